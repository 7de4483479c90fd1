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

runAuthStoreContract('RedisAuthStore', () => new RedisAuthStore({ redis, prefix }), {
  graceWindowClock: 'store',
});

describe('RedisAuthStore specifics', () => {
  afterAll(async () => {
    await cleanup();
    await redis.quit();
  });

  it('implements the optional reserveAttempt and settleAttempt, so the contract suite checks them', () => {
    const store = new RedisAuthStore({ redis, prefix });
    expect(typeof store.reserveAttempt).toBe('function');
    expect(typeof store.settleAttempt).toBe('function');
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

  it('judges deleteUserSessions and deleteSession answers on the `now` it is given, not only on eviction', async () => {
    const store = new RedisAuthStore({ redis, prefix });
    const userId = randomUUID();
    const future = 1_900_000_000_000;
    // Both live for an hour of Redis time; at `future` the first is past its idle expiry.
    const createBoth = async (): Promise<void> => {
      for (const [id, idleExpiresAt] of [
        ['GGGGGGGGGGGGGGGGGGGGGG', future],
        ['HHHHHHHHHHHHHHHHHHHHHH', future + 60_000],
      ] as const)
        await store.createSession({
          id,
          userId,
          tokenHash: 'hash',
          createdAt: future - 3_600_000,
          idleExpiresAt,
          absoluteExpiresAt: future + 3_600_000,
        });
    };
    await createBoth();
    expect(await store.deleteUserSessions(userId, undefined, future)).toBe(1);
    expect(await store.getSession('GGGGGGGGGGGGGGGGGGGGGG')).toBeNull();
    expect(await store.getSession('HHHHHHHHHHHHHHHHHHHHHH')).toBeNull();
    await createBoth();
    expect(await store.deleteSession(userId, 'GGGGGGGGGGGGGGGGGGGGGG', future)).toBe(false);
    expect(await store.deleteSession(userId, 'HHHHHHHHHHHHHHHHHHHHHH', future)).toBe(true);
    expect(await store.getSession('GGGGGGGGGGGGGGGGGGGGGG')).toBeNull();
  });

  it('lets a one-time token expire in Redis at its expiry, keeping nothing past it', async () => {
    const store = new RedisAuthStore({ redis, prefix });
    const userId = randomUUID();
    const expiresAt = Date.now() + 60_000;
    await store.putOneTimeToken('reset-password', userId, 'hash', expiresAt);
    const ttl = await redis.pttl(`${prefix}once:reset-password:{${userId}}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('registers its scripts once per client under versioned names', () => {
    new RedisAuthStore({ redis, prefix });
    new RedisAuthStore({ redis, prefix });
    expect(typeof (redis as unknown as Record<string, unknown>)['posternAuthV2RotateRefresh']).toBe(
      'function',
    );
  });

  it('records each rotation on Redis TIME, and falls back to the caller clock for a session an older version rotated', async () => {
    const store = new RedisAuthStore({ redis, prefix });
    const now = Date.now();
    const id = 'FFFFFFFFFFFFFFFFFFFFFF';
    const rotate = (presentedHash: string, at: number) =>
      store.rotateRefreshToken({
        sessionId: id,
        presentedHash,
        nextHash: `${presentedHash}-next`,
        nextSealed: 'sealed',
        now: at,
        graceMs: 10_000,
        idleExpiresAt: at + 60_000,
      });
    await store.createSession({
      id,
      userId: randomUUID(),
      tokenHash: 'h0',
      createdAt: now,
      idleExpiresAt: now + 4 * 3_600_000,
      absoluteExpiresAt: now + 8 * 3_600_000,
    });
    // The caller's clock is an hour off; the store's own record is not.
    expect((await rotate('h0', now + 3_600_000)).status).toBe('rotated');
    const key = `${prefix}session:{${id}}`;
    const [seconds, micros] = await redis.time();
    const redisNow = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const recorded = Number(await redis.hget(key, 'storeRotatedAt'));
    expect(Math.abs(redisNow - recorded)).toBeLessThan(5_000);
    expect((await store.getSession(id))?.rotatedAt).toBe(now + 3_600_000);
    // What posternAuthV1RotateRefresh left behind during a rolling upgrade: no storeRotatedAt.
    await redis.hdel(key, 'storeRotatedAt');
    expect((await rotate('h0', now + 3_600_000 + 10_000)).status).toBe('grace');
    expect((await rotate('h0', now + 3_600_000 + 10_001)).status).toBe('reused');
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
