// AuthService under races (lockout, password changes while a login hashes), inputs of the wrong
// type from JSON bodies, and MemoryAuthStore's bounds.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { sha256 } from './crypto.js';
import { AuthError, type AuthErrorCode } from './errors.js';
import { GatedHasher } from '../test/gated-hasher.js';
import { Argon2Hasher, type Hasher } from './hasher.js';
import { MemoryAuthStore } from './memory-store.js';
import { AuthService, type AuthServiceOptions } from './service.js';
import type { AuthStore } from './store.js';

const PASSWORD = 'correct horse battery staple 42';
const NEW_PASSWORD = 'a brand new long passphrase 7';
const START = 1_800_000_000_000;

const fastHasher = (options: { memoryCost?: number; timeCost?: number } = {}): Argon2Hasher =>
  new Argon2Hasher({ memoryCost: 1024, timeCost: 1, ...options });

function setup(
  overrides: Partial<AuthServiceOptions> & { inner?: Hasher; store?: AuthStore } = {},
) {
  let time = START;
  const clock = { now: () => time, advance: (ms: number) => (time += ms) };
  const store = overrides.store ?? new MemoryAuthStore();
  const hasher = new GatedHasher(overrides.inner ?? fastHasher());
  const service = new AuthService({
    store,
    tokens: {
      issuer: 'https://postern.test',
      audience: 'postern-api',
      keys: [{ kid: 'k1', alg: 'HS256', secret: randomBytes(32) }],
    },
    clock,
    requireVerifiedEmail: false,
    ...overrides,
    hasher,
  });
  return { service, store, hasher, clock };
}

async function outcome(promise: Promise<unknown>): Promise<AuthErrorCode | 'resolved'> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    if (AuthError.isInstance(error)) return error.code;
    throw error;
  }
}

describe('lockout under concurrency', () => {
  it('does not let a burst of concurrent guesses bypass the per-account lockout', async () => {
    const { service, hasher } = setup({
      lockout: { freeAttempts: 3, lockAfter: 5, baseDelayMs: 60_000, maxDelayMs: 60_000 },
    });
    await service.register({ email: 'burst@example.test', password: PASSWORD });
    const before = hasher.calls.filter((call) => call === 'verify').length;
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, index) =>
        outcome(
          service.login({ email: 'burst@example.test', password: `wrong guess number ${index}` }),
        ),
      ),
    );
    const guesses = hasher.calls.filter((call) => call === 'verify').length - before;
    // Only the free attempts may be checked at once; every other racer waits out the delay.
    expect(guesses).toBeLessThanOrEqual(3);
    expect(results.filter((code) => code === 'INVALID_CREDENTIALS')).toHaveLength(guesses);
    expect(results.filter((code) => code === 'ACCOUNT_LOCKED')).toHaveLength(40 - guesses);
  });

  it('does not let a burst of concurrent guesses from one IP bypass the per-IP limit', async () => {
    const lockout = {
      ipFreeAttempts: 3,
      ipLockAfter: 5,
      baseDelayMs: 60_000,
      maxDelayMs: 60_000,
    } as const;
    const { service, hasher } = setup({ lockout });
    const before = hasher.calls.filter((call) => call === 'verify').length;
    // A different address each time (credential stuffing), so only the IP counter can stop it.
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, index) =>
        outcome(
          service.login({
            email: `stuffed-${index}@example.test`,
            password: 'wrong password!!',
            ip: '203.0.113.50',
          }),
        ),
      ),
    );
    const guesses = hasher.calls.filter((call) => call === 'verify').length - before;
    expect(guesses).toBeLessThanOrEqual(3);
    expect(results.filter((code) => code === 'INVALID_CREDENTIALS')).toHaveLength(guesses);
    expect(results.filter((code) => code === 'ACCOUNT_LOCKED')).toHaveLength(40 - guesses);
    expect(
      await outcome(
        service.login({
          email: 'late@example.test',
          password: 'wrong password!!',
          ip: '203.0.113.50',
        }),
      ),
    ).toBe('ACCOUNT_LOCKED');
    expect(
      await outcome(
        service.login({
          email: 'late@example.test',
          password: 'wrong password!!',
          ip: '203.0.113.51',
        }),
      ),
    ).toBe('INVALID_CREDENTIALS');
  });

  it('past the free attempts, lets one attempt from an IP be in flight at a time, even when they arrive one by one', async () => {
    const { service, hasher, clock } = setup({
      lockout: { ipFreeAttempts: 2, ipLockAfter: 10, baseDelayMs: 1_000, maxDelayMs: 1_000 },
    });
    await service.register({ email: 'paced@example.test', password: PASSWORD });
    const ip = '203.0.113.90';
    const guess = (label: string) =>
      outcome(service.login({ email: `${label}@example.test`, password: 'wrong password!!', ip }));
    expect(await guess('paced-1')).toBe('INVALID_CREDENTIALS');
    expect(await guess('paced-2')).toBe('INVALID_CREDENTIALS');
    clock.advance(1_000);
    const held = hasher.holdNext('verify');
    const first = guess('paced-3');
    await held.reached;
    // It arrives after the first was counted and the delay has run: only the attempt in flight stops it.
    expect(await guess('paced-4')).toBe('ACCOUNT_LOCKED');
    held.release();
    expect(await first).toBe('INVALID_CREDENTIALS');
    // That failure starts the next delay.
    expect(await guess('paced-5')).toBe('ACCOUNT_LOCKED');
    clock.advance(1_000);
    expect(
      await outcome(service.login({ email: 'paced@example.test', password: PASSWORD, ip })),
    ).toBe('resolved');
    // The right password did not restart the delay: the next guess is verified at once.
    expect(await guess('paced-6')).toBe('INVALID_CREDENTIALS');
  });

  it('never charges an account for the attempts the per-IP limit refused', async () => {
    const { service, store } = setup({
      lockout: { ipFreeAttempts: 3, ipLockAfter: 5, freeAttempts: 5, lockAfter: 10 },
    });
    await service.register({ email: 'victim@example.test', password: PASSWORD });
    await Promise.all(
      Array.from({ length: 40 }, (_, index) =>
        outcome(
          service.login({
            email: 'victim@example.test',
            password: `wrong guess number ${index}`,
            ip: '203.0.113.66',
          }),
        ),
      ),
    );
    const account = await store.getFailures(
      `account:${sha256('victim@example.test')}`,
      START,
      3_600_000,
    );
    expect(account?.count).toBe(3);
    expect(
      await outcome(
        service.login({ email: 'victim@example.test', password: PASSWORD, ip: '192.0.2.66' }),
      ),
    ).toBe('resolved');
  });

  it('takes back the per-IP reservation of a right password, so successes never use up an IP', async () => {
    const { service } = setup({ lockout: { ipFreeAttempts: 2, ipLockAfter: 4 } });
    await service.register({ email: 'office@example.test', password: PASSWORD });
    const ip = '198.51.100.77';
    for (let index = 0; index < 10; index += 1)
      expect(
        await outcome(service.login({ email: 'office@example.test', password: PASSWORD, ip })),
      ).toBe('resolved');
    for (let index = 0; index < 2; index += 1)
      expect(
        await outcome(
          service.login({ email: `typo-${index}@example.test`, password: 'wrong password!!', ip }),
        ),
      ).toBe('INVALID_CREDENTIALS');
    expect(
      await outcome(service.login({ email: 'office@example.test', password: PASSWORD, ip })),
    ).toBe('ACCOUNT_LOCKED');
  });

  it('does not let concurrent changePassword calls bypass the lockout either', async () => {
    const { service, hasher } = setup({
      lockout: { freeAttempts: 2, lockAfter: 4, baseDelayMs: 60_000, maxDelayMs: 60_000 },
    });
    const { userId } = await service.register({ email: 'cp@example.test', password: PASSWORD });
    const before = hasher.calls.filter((call) => call === 'verify').length;
    await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        outcome(
          service.changePassword({
            userId,
            currentPassword: `wrong guess number ${index}`,
            newPassword: NEW_PASSWORD,
          }),
        ),
      ),
    );
    expect(hasher.calls.filter((call) => call === 'verify').length - before).toBeLessThanOrEqual(2);
  });

  it('still lets the right password in after concurrent free attempts and clears the counter', async () => {
    const { service } = setup({ lockout: { freeAttempts: 3, lockAfter: 5 } });
    await service.register({ email: 'twice@example.test', password: PASSWORD });
    const both = await Promise.all([
      outcome(service.login({ email: 'twice@example.test', password: PASSWORD })),
      outcome(service.login({ email: 'twice@example.test', password: PASSWORD })),
    ]);
    expect(both).toEqual(['resolved', 'resolved']);
    for (let index = 0; index < 3; index += 1)
      expect(
        await outcome(service.login({ email: 'twice@example.test', password: 'wrong password!!' })),
      ).toBe('INVALID_CREDENTIALS');
  });

  it('does not count a correct password on an unverified account as a failure', async () => {
    const { service } = setup({
      requireVerifiedEmail: true,
      lockout: { freeAttempts: 1, lockAfter: 2 },
    });
    await service.register({ email: 'unverified@example.test', password: PASSWORD });
    for (let index = 0; index < 3; index += 1)
      expect(
        await outcome(service.login({ email: 'unverified@example.test', password: PASSWORD })),
      ).toBe('EMAIL_NOT_VERIFIED');
  });
});

describe('a store without the optional reserveAttempt and settleAttempt', () => {
  it('still works: the IP is counted after hashing, on failures only, as before', async () => {
    const store = new MemoryAuthStore();
    // A custom store written before reserveAttempt and settleAttempt existed.
    Object.defineProperty(store, 'reserveAttempt', { value: undefined });
    Object.defineProperty(store, 'settleAttempt', { value: undefined });
    const { service } = setup({ store, lockout: { ipFreeAttempts: 2, ipLockAfter: 4 } });
    await service.register({ email: 'legacy@example.test', password: PASSWORD });
    const ip = '192.0.2.200';
    for (let index = 0; index < 5; index += 1)
      expect(
        await outcome(service.login({ email: 'legacy@example.test', password: PASSWORD, ip })),
      ).toBe('resolved');
    expect(await store.getFailures(`ip:${ip}`, START, 3_600_000)).toBeNull();
    for (let index = 0; index < 2; index += 1)
      expect(
        await outcome(
          service.login({
            email: `legacy-${index}@example.test`,
            password: 'wrong password!!',
            ip,
          }),
        ),
      ).toBe('INVALID_CREDENTIALS');
    expect(
      await outcome(service.login({ email: 'legacy@example.test', password: PASSWORD, ip })),
    ).toBe('ACCOUNT_LOCKED');
  });
});

describe('login racing a password change or deletion', () => {
  it('does not leave a live session when the password changes while a login is verifying', async () => {
    const { service, hasher } = setup();
    const { userId } = await service.register({ email: 'race@example.test', password: PASSWORD });
    const held = hasher.holdNext('verify');
    const login = outcome(service.login({ email: 'race@example.test', password: PASSWORD }));
    await held.reached;
    await service.setPassword(userId, NEW_PASSWORD);
    held.release();
    expect(await login).toBe('INVALID_CREDENTIALS');
    expect(await service.listSessions(userId)).toEqual([]);
  });

  it('does not open a session for a user deleted while the login was verifying', async () => {
    const { service, hasher, store } = setup();
    const { userId } = await service.register({ email: 'gone@example.test', password: PASSWORD });
    const held = hasher.holdNext('verify');
    const login = service.login({ email: 'gone@example.test', password: PASSWORD }).then(
      (pair) => pair,
      (error: unknown) => error,
    );
    await held.reached;
    await service.deleteUser(userId);
    held.release();
    const result = await login;
    expect(AuthError.isInstance(result) && result.code).toBe('INVALID_CREDENTIALS');
    expect(await store.listSessions(userId, START)).toEqual([]);
  });

  it('never writes a rehash of the old password over a password changed meanwhile', async () => {
    const store = new MemoryAuthStore();
    const weak = setup({ store });
    const { userId } = await weak.service.register({
      email: 'rehash@example.test',
      password: PASSWORD,
    });
    // Stronger parameters: the next login rehashes the old password.
    const strong = setup({ store, inner: fastHasher({ memoryCost: 2048 }) });
    const held = strong.hasher.holdNext('hash');
    const login = outcome(
      strong.service.login({ email: 'rehash@example.test', password: PASSWORD }),
    );
    await held.reached;
    await weak.service.setPassword(userId, NEW_PASSWORD);
    held.release();
    await login;
    expect(
      await outcome(strong.service.login({ email: 'rehash@example.test', password: NEW_PASSWORD })),
    ).toBe('resolved');
    expect(
      await outcome(strong.service.login({ email: 'rehash@example.test', password: PASSWORD })),
    ).toBe('INVALID_CREDENTIALS');
  });
});

describe('non-string inputs from JSON bodies', () => {
  const junk: unknown[] = [
    null,
    undefined,
    42,
    true,
    {},
    [],
    ['a long password here'],
    { length: 3 },
  ];

  it('answers every non-string password with a typed error, never a TypeError', async () => {
    const { service, hasher } = setup();
    const { userId } = await service.register({ email: 'types@example.test', password: PASSWORD });
    const reset = await service.requestPasswordReset('types@example.test');
    const before = hasher.calls.length;
    for (const value of junk) {
      const password = value as string;
      expect(await outcome(service.register({ email: 'other@example.test', password }))).toBe(
        'INVALID_INPUT',
      );
      expect(
        await outcome(
          service.changePassword({ userId, currentPassword: password, newPassword: NEW_PASSWORD }),
        ),
      ).toBe('INVALID_INPUT');
      expect(
        await outcome(
          service.changePassword({ userId, currentPassword: PASSWORD, newPassword: password }),
        ),
      ).toBe('INVALID_INPUT');
      expect(await outcome(service.setPassword(userId, password))).toBe('INVALID_INPUT');
      expect(await outcome(service.resetPassword(reset!.token, password))).toBe('INVALID_INPUT');
    }
    // Nothing was hashed, and the reset token was not spent by the refusals.
    expect(hasher.calls.slice(before).filter((call) => call === 'hash')).toEqual([]);
    expect(await outcome(service.resetPassword(reset!.token, NEW_PASSWORD))).toBe('resolved');
  });

  it('treats a null request context like an empty one', async () => {
    const { service } = setup();
    await service.register({ email: 'ctx@example.test', password: PASSWORD });
    const pair = await service.login({ email: 'ctx@example.test', password: PASSWORD });
    const nothing = null as unknown as Record<string, never>;
    const next = await service.refresh(pair.refreshToken, nothing);
    expect(await service.logout(next.refreshToken, nothing)).toBe(true);
  });
});

describe('logout of a dead session', () => {
  it('resolves false for an expired session, as the Redis store does', async () => {
    const { service, clock } = setup({ sessions: { idleTimeoutMs: 60_000 } });
    await service.register({ email: 'idle@example.test', password: PASSWORD });
    const pair = await service.login({ email: 'idle@example.test', password: PASSWORD });
    clock.advance(60_000);
    expect(await service.logout(pair.refreshToken)).toBe(false);
  });
});

describe('MemoryAuthStore sweeping is amortised', () => {
  afterEach(() => vi.restoreAllMocks());

  it('does not rescan every entry on each new key once full of live entries', () => {
    const store = new MemoryAuthStore({ maxEntries: 100 });
    const prototype = Map.prototype as unknown as { [Symbol.iterator]: () => Iterator<unknown> };
    const iterate = vi.spyOn(prototype, Symbol.iterator);
    // Unawaited on purpose: the memory store works synchronously, so only its own scans count.
    for (let index = 0; index < 2_000; index += 1) {
      void store.acquireCooldown(`reset:${index}`, START, 60_000);
      void store.recordFailure(`ip:${index}`, START, 3_600_000);
    }
    const scans = iterate.mock.calls.length;
    iterate.mockRestore();
    expect(store.size).toMatchObject({ failures: 2_000, cooldowns: 2_000 });
    expect(scans).toBeLessThan(40);
  });
});
