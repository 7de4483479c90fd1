import { describe, expect, it } from 'vitest';
import { MemoryAuthStore } from './memory-store.js';
import { runAuthStoreContract } from './testing.js';

runAuthStoreContract('MemoryAuthStore', () => new MemoryAuthStore(), {
  graceWindowClock: 'caller',
});

describe('MemoryAuthStore', () => {
  it('implements the optional reserveAttempt and settleAttempt, so the contract suite checks them', () => {
    const store = new MemoryAuthStore();
    expect(typeof store.reserveAttempt).toBe('function');
    expect(typeof store.settleAttempt).toBe('function');
  });

  it('judges deleteUserSessions and deleteSession answers on the `now` it is given', async () => {
    const store = new MemoryAuthStore();
    const at = (id: string, idleExpiresAt: number) =>
      store.createSession({
        id,
        userId: 'u',
        tokenHash: 'h',
        createdAt: 0,
        idleExpiresAt,
        absoluteExpiresAt: 10_000,
      });
    await at('dead', 1_000);
    await at('alive', 5_000);
    expect(await store.deleteUserSessions('u', undefined, 1_000)).toBe(1);
    expect(store.size.sessions).toBe(0);
    await at('dead', 1_000);
    await at('alive', 5_000);
    expect(await store.deleteSession('u', 'dead', 1_000)).toBe(false);
    expect(await store.deleteSession('u', 'alive', 1_000)).toBe(true);
    expect(store.size.sessions).toBe(0);
  });

  it('hands out copies, so callers cannot change stored records', async () => {
    const store = new MemoryAuthStore();
    await store.createUser({
      id: 'u1',
      email: 'a@example.test',
      passwordHash: 'h',
      emailVerified: false,
      createdAt: 1,
    });
    const user = await store.getUserById('u1');
    user!.passwordHash = 'changed';
    expect((await store.getUserById('u1'))?.passwordHash).toBe('h');
  });
});

describe('MemoryAuthStore bounds', () => {
  it('sweeps expired counters, cooldowns and sessions once it holds maxEntries', async () => {
    const store = new MemoryAuthStore({ maxEntries: 3 });
    for (let index = 0; index < 3; index += 1) {
      await store.recordFailure(`ip:${index}`, 0, 1_000);
      await store.acquireCooldown(`c:${index}`, 0, 1_000);
      await store.createSession({
        id: `s${index}`,
        userId: 'u',
        tokenHash: 'h',
        createdAt: 0,
        idleExpiresAt: 1_000,
        absoluteExpiresAt: 2_000,
      });
    }
    expect(store.size).toEqual({ failures: 3, cooldowns: 3, sessions: 3 });
    await store.recordFailure('ip:new', 5_000, 1_000);
    await store.acquireCooldown('c:new', 5_000, 1_000);
    await store.createSession({
      id: 'fresh',
      userId: 'u',
      tokenHash: 'h',
      createdAt: 5_000,
      idleExpiresAt: 6_000,
      absoluteExpiresAt: 7_000,
    });
    expect(store.size).toEqual({ failures: 1, cooldowns: 1, sessions: 1 });
    expect((await store.listSessions('u', 5_000)).map((session) => session.id)).toEqual(['fresh']);
  });

  it('keeps live entries when sweeping', async () => {
    const store = new MemoryAuthStore({ maxEntries: 1 });
    await store.recordFailure('ip:a', 0, 10_000);
    await store.recordFailure('ip:b', 1, 10_000);
    expect(await store.getFailures('ip:a', 2, 10_000)).toEqual({ count: 1, lastFailureAt: 0 });
  });
});
