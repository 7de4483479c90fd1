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
import { expectDeadSessionAnswers } from './dead-session.js';
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
  options: Pick<AuthServiceOptions, 'lockout' | 'sessions' | 'clock'> & {
    hasher?: GatedHasher;
  } = {},
): AuthService {
  const { hasher, ...rest } = options;
  return new AuthService({
    store: new RedisAuthStore({ redis, prefix }),
    hasher: hasher ?? new Argon2Hasher({ memoryCost: 1024, timeCost: 1 }),
    tokens: { issuer: 'https://postern.test', audience: 'api', keys: [key] },
    requireVerifiedEmail: false,
    onEvent: (event) => events.push(event),
    ...rest,
  });
}

/** A clock that reads the real time shifted by `skewMs`, as on a host whose clock is off. */
function skewedClock(skewMs: number): { now(): number } {
  return { now: () => Date.now() + skewMs };
}

/** Waits in real time: the grace window is measured on Redis's clock, which no test can move. */
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
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
    // A short window, waited out for real: Redis decides it on its own clock.
    const sessions = { reuseGraceMs: 100 };
    const a = service(redisA, events, { sessions });
    const b = service(redisB, events, { sessions });
    const email = `${randomUUID()}@example.test`;
    await a.register({ email, password: PASSWORD });
    const pair = await a.login({ email, password: PASSWORD });
    const legit = await a.refresh(pair.refreshToken);
    await sleep(300);
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

describe('AuthService on Redis, two instances: clocks skewed by more than the grace window', () => {
  // Default window (10 s); B's clock runs 30 s ahead of A's.
  const SKEW_MS = 30_000;

  /** A on the true clock and B 30 s ahead, on two Redis clients; one user logged in on A. */
  async function skewedPair(
    options: Parameters<typeof service>[2] = {},
    events: AuthEvent[] = [],
  ): Promise<{ a: AuthService; b: AuthService; pair: TokenPair }> {
    const a = service(redisA, events, { ...options, clock: skewedClock(0) });
    const b = service(redisB, events, { ...options, clock: skewedClock(SKEW_MS) });
    const email = `${randomUUID()}@example.test`;
    await a.register({ email, password: PASSWORD });
    return { a, b, pair: await a.login({ email, password: PASSWORD }) };
  }

  it('gives the parent the successor on either instance, whichever rotated', async () => {
    // A rotates; B, 30 s ahead by its own clock, sees the parent at once: a race, not a theft.
    const { a, b, pair: first } = await skewedPair();
    const rotatedByA = await a.refresh(first.refreshToken);
    const graceOnB = await b.refresh(first.refreshToken);
    expect(graceOnB.refreshToken).toBe(rotatedByA.refreshToken);

    // B rotates; A, 30 s behind by its own clock, sees the parent at once.
    const rotatedByB = await b.refresh(rotatedByA.refreshToken);
    const graceOnA = await a.refresh(rotatedByA.refreshToken);
    expect(graceOnA.refreshToken).toBe(rotatedByB.refreshToken);
    expect((await a.refresh(rotatedByB.refreshToken)).sessionId).toBe(first.sessionId);
  });

  it('lets one of 50 concurrent refreshes through skewed instances win; all others get the same successor', async () => {
    const { a, b, pair } = await skewedPair();
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, index) =>
        (index % 2 === 0 ? a : b).refresh(pair.refreshToken),
      ),
    );
    expect(results.filter((result) => result.status === 'rejected')).toEqual([]);
    const successors = new Set(
      results.map((result) => (result as PromiseFulfilledResult<TokenPair>).value.refreshToken),
    );
    expect(successors.size).toBe(1);
  });

  it('does not let an instance whose clock runs behind stretch the window for a replay', async () => {
    const events: AuthEvent[] = [];
    // A short window so the test can wait it out; B is still far more than the window ahead.
    const { a, b, pair } = await skewedPair({ sessions: { reuseGraceMs: 100 } }, events);
    const legit = await b.refresh(pair.refreshToken);
    await sleep(300);
    // On A's clock the rotation is 30 s in the future, so "now - rotatedAt" stays inside any window.
    expect(await code(a.refresh(pair.refreshToken))).toBe('TOKEN_REUSED');
    expect(await code(b.refresh(legit.refreshToken))).toBe('TOKEN_INVALID');
    expect(events.filter((event) => event.type === 'token_reuse')).toHaveLength(1);
  });
});

describe('AuthService on Redis: the per-IP limit under concurrency', () => {
  const lockout = { ipFreeAttempts: 3, ipLockAfter: 5, baseDelayMs: 60_000, maxDelayMs: 60_000 };

  it('does not let concurrent guesses from one IP through two processes bypass the per-IP limit', async () => {
    const hasherA = gated();
    const hasherB = gated();
    const a = service(redisA, [], { hasher: hasherA, lockout });
    const b = service(redisB, [], { hasher: hasherB, lockout });
    const ip = `198.51.100.${String(Math.floor(Math.random() * 200) + 1)}:${randomUUID()}`;
    // A different address each time (credential stuffing), so only the IP counter can stop it.
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, index) =>
        code(
          (index % 2 === 0 ? a : b).login({
            email: `${randomUUID()}@example.test`,
            password: `wrong guess ${index}`,
            ip,
          }),
        ),
      ),
    );
    const verified = [...hasherA.calls, ...hasherB.calls].filter((call) => call === 'verify');
    expect(verified.length).toBeLessThanOrEqual(3);
    expect(results.filter((result) => result === 'INVALID_CREDENTIALS')).toHaveLength(
      verified.length,
    );
    expect(results.filter((result) => result === 'ACCOUNT_LOCKED')).toHaveLength(
      40 - verified.length,
    );
    const late = { email: `${randomUUID()}@example.test`, password: 'wrong guess late' };
    expect(await code(b.login({ ...late, ip }))).toBe('ACCOUNT_LOCKED');
    expect(await code(a.login({ ...late, ip: `${ip}:other` }))).toBe('INVALID_CREDENTIALS');
  });

  it('counts only failures against an IP: right passwords from it, even concurrent ones, give their reservation back', async () => {
    const a = service(redisA, [], { lockout: { ...lockout, ipFreeAttempts: 5 } });
    const b = service(redisB, [], { lockout: { ...lockout, ipFreeAttempts: 5 } });
    const ip = `office-${randomUUID()}`;
    const emails = Array.from({ length: 3 }, () => `${randomUUID()}@example.test`);
    for (const email of emails) await a.register({ email, password: PASSWORD });
    for (let round = 0; round < 5; round += 1) {
      const results = await Promise.all(
        emails.map((email, index) =>
          code((index % 2 === 0 ? a : b).login({ email, password: PASSWORD, ip })),
        ),
      );
      expect(results).toEqual(['resolved', 'resolved', 'resolved']);
    }
    const counter = await new RedisAuthStore({ redis: redisA, prefix }).getFailures(
      `ip:${ip}`,
      Date.now(),
      3_600_000,
    );
    expect(counter?.count ?? 0).toBe(0);
  });
});

describe('AuthService on Redis: a dead session', () => {
  it('answers like the memory store while Redis still holds the record', async () => {
    let time = Date.now();
    const a = service(redisA, [], {
      sessions: { idleTimeoutMs: 60_000 },
      clock: { now: () => time },
    });
    const email = `${randomUUID()}@example.test`;
    const { userId } = await a.register({ email, password: PASSWORD });
    const pairs: TokenPair[] = [];
    for (let index = 0; index < 4; index += 1)
      pairs.push(await a.login({ email, password: PASSWORD }));
    // Dead on the service clock; Redis keeps the keys for their real 60 s.
    time += 60_000;
    await expectDeadSessionAnswers(a, userId, pairs);
  });

  it('answers the same once Redis has evicted the record', async () => {
    const a = service(redisA, [], { sessions: { idleTimeoutMs: 200 } });
    const email = `${randomUUID()}@example.test`;
    const { userId } = await a.register({ email, password: PASSWORD });
    const pairs: TokenPair[] = [];
    for (let index = 0; index < 4; index += 1)
      pairs.push(await a.login({ email, password: PASSWORD }));
    await sleep(400);
    await expectDeadSessionAnswers(a, userId, pairs);
  });
});
