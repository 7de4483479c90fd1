import { describe, expect, it } from 'vitest';
import { MemoryAuthStore } from './memory-store.js';
import { runAuthStoreContract } from './testing.js';

runAuthStoreContract('MemoryAuthStore', () => new MemoryAuthStore());

describe('MemoryAuthStore', () => {
  it('hands out copies, so callers cannot change stored records', async () => {
    const store = new MemoryAuthStore();
    await store.createUser({ id: 'u1', email: 'a@example.test', passwordHash: 'h', emailVerified: false, createdAt: 1 });
    const user = await store.getUserById('u1');
    user!.passwordHash = 'changed';
    expect((await store.getUserById('u1'))?.passwordHash).toBe('h');
  });
});
