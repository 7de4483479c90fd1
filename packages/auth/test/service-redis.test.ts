import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AuthError,
  AuthService,
  Argon2Hasher,
  type AuthEvent,
  type AuthServiceOptions,
  type TokenPair,
} from '../src/index.js';
import { RedisAuthStore } from '../src/redis.js';
import { GatedHasher } from './gated-hasher.js';

const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const prefix = `test:auth-service:${randomUUID()}:`;
// Two clients: two processes sharing one Redis.
const redisA = new Redis(REDIS_URL);
const redisB = new Redis(REDIS_URL);
const PASSWORD = 'shared redis password 1';
const NEW_PASSWORD = 'a brand new long passphrase 7';
const key = { kid: 'k1', alg: 'HS256' as const, secret: randomBytes(32) };

function service(
  redis: Redis,
  events: AuthEvent[] = [],
  options: { hasher?: GatedHasher; lockout?: AuthServiceOptions['lockout'] } = {},
): AuthService {
  return new AuthService({
    store: new RedisAuthStore({ redis, prefix }),
    hasher: options.hasher ?? new Argon2Hasher({ memoryCost: 1024, timeCost: 1 }),
    tokens: { issuer: 'https://postern.test', audience: 'api', keys: [key] },
    requireVerifiedEmail: false,
    onEvent: (event) => events.push(event),
    ...(options.lockout === undefined ? {} : { lockout: options.lockout }),
  });
}

/** A fast Argon2 hasher whose calls a test can hold at a chosen point. */
const gated = (memoryCost = 1024) => new GatedHasher(new Argon2Hasher({ memoryCost, timeCost: 1 }));

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    if (AuthError.isInstance(error)) return error.code;
    throw error;
  }
}

afterAll(async () => {
  let cursor = '0';
  do {
    const [next, keys] = await redisA.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redisA.del(...keys);
  } while (cursor !== '0');
  await Promise.all([redisA.quit(), redisB.quit()]);
});

describe('AuthService on Redis, two instances', () => {
  it('lets one of 50 concurrent refreshes across two processes win; all others get the same successor', async () => {
    const a = service(redisA);
    const b = service(redisB);
    const email = `${randomUUID()}@example.test`;
    await a.register({ email, password: PASSWORD });
    const pair = await a.login({ email, password: PASSWORD });
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, index) =>
        (index % 2 === 0 ? a : b).refresh(pair.refreshToken),
      ),
    );
    const fulfilled = results.filter(
      (result): result is PromiseFulfilledResult<TokenPair> => result.status === 'fulfilled',
    );
    const rejected = results.filter((result) => result.status === 'rejected');
    for (const result of rejected) expect((result.reason as AuthError).code).toBe('TOKEN_REUSED');
    const successors = new Set(fulfilled.map((result) => result.value.refreshToken));
    expect(successors.size).toBe(1);
    expect(rejected).toHaveLength(0);
    const session = await new RedisAuthStore({ redis: redisA, prefix }).getSession(pair.sessionId);
    expect(session?.generation).toBe(1);
    expect((await b.refresh([...successors][0]!)).sessionId).toBe(pair.sessionId);
  });

  it('revokes the family on reuse after the window, seen from the other instance at once', async () => {
    const events: AuthEvent[] = [];
    const clock = {
      time: Date.now(),
      now(): number {
        return this.time;
      },
    };
    const make = (redis: Redis) =>
      new AuthService({
        store: new RedisAuthStore({ redis, prefix }),
        hasher: new Argon2Hasher({ memoryCost: 1024, timeCost: 1 }),
        tokens: { issuer: 'https://postern.test', audience: 'api', keys: [key] },
        requireVerifiedEmail: false,
        clock,
        onEvent: (event) => events.push(event),
      });
    const a = make(redisA);
    const b = make(redisB);
    const email = `${randomUUID()}@example.test`;
    await a.register({ email, password: PASSWORD });
    const pair = await a.login({ email, password: PASSWORD });
    const legit = await a.refresh(pair.refreshToken);
    clock.time += 10_001;
    expect(await code(b.refresh(pair.refreshToken))).toBe('TOKEN_REUSED');
    expect(await code(a.refresh(legit.refreshToken))).toBe('TOKEN_INVALID');
    expect(await code(a.verifyAccessToken(legit.accessToken, { checkSession: true }))).toBe(
      'TOKEN_INVALID',
    );
    expect(events.some((event) => event.type === 'token_reuse')).toBe(true);
  });

  it('shares lockout counters between instances', async () => {
    const a = service(redisA);
    const b = service(redisB);
    const email = `${randomUUID()}@example.test`;
    await a.register({ email, password: PASSWORD });
    expect(await code(a.login({ email, password: 'wrong password 11' }))).toBe(
      'INVALID_CREDENTIALS',
    );
    expect(await code(b.login({ email, password: 'wrong password 11' }))).toBe(
      'INVALID_CREDENTIALS',
    );
    expect(await code(a.login({ email, password: 'wrong password 11' }))).toBe(
      'INVALID_CREDENTIALS',
    );
    const locked = await b.login({ email, password: PASSWORD }).catch((error: unknown) => error);
    expect(AuthError.isInstance(locked) && locked.code).toBe('ACCOUNT_LOCKED');
    expect((locked as AuthError).retryAfterMs).toBeGreaterThan(0);
  });

  it('logs out everywhere across instances and lists sessions from either', async () => {
    const a = service(redisA);
    const b = service(redisB);
    const email = `${randomUUID()}@example.test`;
    const { userId } = await a.register({ email, password: PASSWORD });
    const first = await a.login({ email, password: PASSWORD, ip: '192.0.2.1' });
    await b.login({ email, password: PASSWORD, ip: '192.0.2.2' });
    expect((await b.listSessions(userId)).map((session) => session.ip)).toEqual(
      expect.arrayContaining(['192.0.2.1', '192.0.2.2']),
    );
    expect(await b.logoutAll(userId)).toBe(2);
    expect(await code(a.verifyAccessToken(first.accessToken, { checkSession: true }))).toBe(
      'TOKEN_INVALID',
    );
    expect(await a.listSessions(userId)).toEqual([]);
  });
});

describe('AuthService on Redis, two instances: races with hashing', () => {
  it('does not let concurrent guesses from two processes bypass the lockout', async () => {
    const lockout = { freeAttempts: 3, lockAfter: 5, baseDelayMs: 60_000, maxDelayMs: 60_000 };
    const hasherA = gated();
    const hasherB = gated();
    const a = service(redisA, [], { hasher: hasherA, lockout });
    const b = service(redisB, [], { hasher: hasherB, lockout });
    const email = `${randomUUID()}@example.test`;
    await a.register({ email, password: PASSWORD });
    const before = hasherA.calls.length + hasherB.calls.length;
    await Promise.all(
      Array.from({ length: 30 }, (_, index) =>
        code((index % 2 === 0 ? a : b).login({ email, password: `wrong guess ${index}` })),
      ),
    );
    const verified = [...hasherA.calls, ...hasherB.calls]
      .slice(before)
      .filter((call) => call === 'verify');
    expect(verified.length).toBeLessThanOrEqual(3);
  });

  it('drops the session of a login that raced a password change in another process', async () => {
    const hasherA = gated();
    const a = service(redisA, [], { hasher: hasherA });
    const b = service(redisB, [], { hasher: gated() });
    const email = `${randomUUID()}@example.test`;
    const { userId } = await a.register({ email, password: PASSWORD });
    const held = hasherA.holdNext('verify');
    const login = code(a.login({ email, password: PASSWORD }));
    await held.reached;
    await b.setPassword(userId, NEW_PASSWORD);
    held.release();
    expect(await login).toBe('INVALID_CREDENTIALS');
    expect(await b.listSessions(userId)).toEqual([]);
  });

  it('never writes a login rehash over a password changed meanwhile', async () => {
    const weak = service(redisB, [], { hasher: gated() });
    const strongHasher = gated(2048);
    const strong = service(redisA, [], { hasher: strongHasher });
    const email = `${randomUUID()}@example.test`;
    const { userId } = await weak.register({ email, password: PASSWORD });
    const held = strongHasher.holdNext('hash');
    const login = code(strong.login({ email, password: PASSWORD }));
    await held.reached;
    await weak.setPassword(userId, NEW_PASSWORD);
    held.release();
    await login;
    expect(await code(strong.login({ email, password: NEW_PASSWORD }))).toBe('resolved');
    expect(await code(strong.login({ email, password: PASSWORD }))).toBe('INVALID_CREDENTIALS');
  });
});
