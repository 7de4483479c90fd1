import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisAuthStore } from '../src/redis.js';
import { runAuthStoreContract } from '../src/testing.js';

const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const prefix = `test:auth:${randomUUID()}:`;
const redis = new Redis(REDIS_URL);

async function cleanup(): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
}

runAuthStoreContract('RedisAuthStore', () => new RedisAuthStore({ redis, prefix }));

describe('RedisAuthStore specifics', () => {
  afterAll(async () => {
    await cleanup();
    await redis.quit();
  });

  it('gives sessions native expiry and keeps emails out of key names', async () => {
    const store = new RedisAuthStore({ redis, prefix });
    const now = Date.now();
    const userId = randomUUID();
    await store.createUser({
      id: userId,
      email: `${userId}@example.test`,
      passwordHash: 'h',
      emailVerified: false,
      createdAt: now,
    });
    await store.createSession({
      id: 'AAAAAAAAAAAAAAAAAAAAAA',
      userId,
      tokenHash: 'hash',
      createdAt: now,
      idleExpiresAt: now + 60_000,
      absoluteExpiresAt: now + 120_000,
    });
    const ttl = await redis.pttl(`${prefix}session:{AAAAAAAAAAAAAAAAAAAAAA}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
    const keys = await redis.keys(`${prefix}*`);
    expect(keys.some((key) => key.includes('@'))).toBe(false);
  });

  it('only ever lengthens the expiry of a user session index', async () => {
    const store = new RedisAuthStore({ redis, prefix });
    const userId = randomUUID();
    const now = Date.now();
    const session = (id: string, lifetimeMs: number) => ({
      id,
      userId,
      tokenHash: 'hash',
      createdAt: now,
      idleExpiresAt: now + lifetimeMs,
      absoluteExpiresAt: now + lifetimeMs,
    });
    await store.createSession(session('BBBBBBBBBBBBBBBBBBBBBB', 600_000));
    await store.createSession(session('CCCCCCCCCCCCCCCCCCCCCC', 60_000));
    const ttl = await redis.pttl(`${prefix}user:{${userId}}:sessions`);
    expect(ttl).toBeGreaterThan(60_000);
    expect(await store.deleteUserSessions(userId)).toBe(2);
  });

  it('fails a session or token write that Redis refused inside its transaction, instead of reporting it stored', async () => {
    const store = new RedisAuthStore({ redis, prefix });
    const now = Date.now();
    const userId = randomUUID();
    // A key of the wrong type makes HSET fail inside MULTI; EXEC itself still answers.
    await redis.set(`${prefix}session:{DDDDDDDDDDDDDDDDDDDDDD}`, 'not a hash');
    await expect(
      store.createSession({
        id: 'DDDDDDDDDDDDDDDDDDDDDD',
        userId,
        tokenHash: 'hash',
        createdAt: now,
        idleExpiresAt: now + 60_000,
        absoluteExpiresAt: now + 120_000,
      }),
    ).rejects.toThrow(/WRONGTYPE/);
    await redis.set(`${prefix}user:{${userId}}:sessions`, 'not a set');
    await expect(
      store.createSession({
        id: 'EEEEEEEEEEEEEEEEEEEEEE',
        userId,
        tokenHash: 'hash',
        createdAt: now,
        idleExpiresAt: now + 60_000,
        absoluteExpiresAt: now + 120_000,
      }),
    ).rejects.toThrow(/WRONGTYPE/);
    expect(await store.getSession('EEEEEEEEEEEEEEEEEEEEEE')).toBeNull();
  });

  it('registers its scripts once per client under versioned names', () => {
    new RedisAuthStore({ redis, prefix });
    new RedisAuthStore({ redis, prefix });
    expect(typeof (redis as unknown as Record<string, unknown>)['posternAuthV1RotateRefresh']).toBe(
      'function',
    );
  });

  it('treats a user hash without an email index entry as absent for email lookups', async () => {
    const store = new RedisAuthStore({ redis, prefix });
    const userId = randomUUID();
    const email = `${userId}@example.test`;
    await store.createUser({
      id: userId,
      email,
      passwordHash: 'h',
      emailVerified: false,
      createdAt: 1,
    });
    await redis.set(
      `${prefix}email:${(await import('../src/crypto.js')).sha256(email)}`,
      'someone-else',
    );
    expect(await store.getUserByEmail(email)).toBeNull();
  });
});
