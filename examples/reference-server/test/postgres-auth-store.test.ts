import { randomBytes, randomUUID } from 'node:crypto';
import { RedisAuthStore } from '@postern/auth/redis';
import { runAuthStoreContract } from '@postern/auth/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresAuthStore } from '../src/postgres-auth-store.js';
import { createTestDatabase } from './support/database.js';
import type { TestDatabase } from './support/database.js';
import { REDIS_URL, deleteKeys } from './support/redis.js';

const prefix = `test:rs:auth:${randomBytes(4).toString('hex')}:`;
const redis = new Redis(REDIS_URL);
let database: TestDatabase | undefined;

async function getDatabase(): Promise<TestDatabase> {
  database ??= await createTestDatabase('rs_auth');
  return database;
}

async function createStore(): Promise<PostgresAuthStore> {
  const { db } = await getDatabase();
  return new PostgresAuthStore({ db, sessions: new RedisAuthStore({ redis, prefix }) });
}

runAuthStoreContract('PostgresAuthStore (users in PostgreSQL, sessions in Redis)', createStore);

describe('PostgresAuthStore', () => {
  let store: PostgresAuthStore;
  beforeAll(async () => {
    store = await createStore();
  });

  it('counts login attempts per IP before hashing, through the Redis store (so the contract suite runs those checks)', async () => {
    expect(store.reserveAttempt).toBeTypeOf('function');
    const key = `ip:${randomUUID()}`;
    const now = Date.now();
    const reservation = { id: 'a1', now, windowMs: 60_000, abandonAfterMs: 60_000 };
    const seen = await store.reserveAttempt!(key, reservation);
    expect(seen.count).toBe(1);
    await store.settleAttempt!(key, reservation, true);
    expect((await store.getFailures(key, now, 60_000))?.count).toBe(1);
  });

  it('deleting a user revokes its sessions and cascades to its rows', async () => {
    const { db } = await getDatabase();
    const id = '6f1c1a52-3d6f-4a8e-9a51-0d2b7f0e4c11';
    expect(
      await store.createUser({
        id,
        email: 'cascade@example.test',
        passwordHash: 'h',
        emailVerified: true,
        createdAt: 1,
      }),
    ).toBe(true);
    await store.createSession({
      id: 'session-one',
      userId: id,
      tokenHash: 'x',
      createdAt: 1,
      idleExpiresAt: Date.now() + 60_000,
      absoluteExpiresAt: Date.now() + 60_000,
    });
    await db
      .insertInto('audit_log')
      .values({ user_id: id, action: 'test', request_id: null, detail: '{}', created_at: 1 })
      .execute();
    expect(await store.deleteUser(id)).toBe(true);
    expect(await store.getSession('session-one')).toBeNull();
    expect(
      await db.selectFrom('audit_log').select('id').where('user_id', '=', id).execute(),
    ).toEqual([]);
    expect(await store.deleteUser(id)).toBe(false);
    expect(await store.updateUser('not-a-uuid', { emailVerified: true })).toBe(false);
    expect(await store.getUserById('not-a-uuid')).toBeNull();
    expect(await store.deleteUser('not-a-uuid')).toBe(false);
  });

  it('an empty patch reports whether the user exists', async () => {
    const id = '7a2b3c4d-1111-4222-8333-944455556666';
    await store.createUser({
      id,
      email: 'patch@example.test',
      passwordHash: 'h',
      emailVerified: false,
      createdAt: 1,
    });
    expect(await store.updateUser(id, {})).toBe(true);
    expect(await store.updateUser('7a2b3c4d-1111-4222-8333-000000000000', {})).toBe(false);
  });
});

afterAll(async () => {
  await deleteKeys(redis, prefix);
  redis.disconnect();
  await database?.drop();
});
