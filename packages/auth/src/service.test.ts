import { generateKeyPairSync, randomBytes, scryptSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AuthError, type AuthErrorCode } from './errors.js';
import type { AuthEvent } from './events.js';
import { Argon2Hasher, type Hasher } from './hasher.js';
import { MemoryAuthStore } from './memory-store.js';
import { AuthService, type AuthServiceOptions } from './service.js';
import type { AuthStore } from './store.js';
import type { AccessTokenKey } from './tokens.js';
import { expectDeadSessionAnswers } from '../test/dead-session.js';

const PASSWORD = 'correct horse battery staple 42';
const START = 1_800_000_000_000;

/** Wraps a real hasher and records every call (for "same work" assertions). */
class CountingHasher implements Hasher {
  readonly calls: Array<{ method: 'hash' | 'verify'; hash?: string }> = [];
  constructor(readonly inner: Hasher) {}
  hash(password: string): Promise<string> {
    this.calls.push({ method: 'hash' });
    return this.inner.hash(password);
  }
  verify(hash: string, password: string): Promise<boolean> {
    this.calls.push({ method: 'verify', hash });
    return this.inner.verify(hash, password);
  }
  needsRehash(hash: string): boolean {
    return this.inner.needsRehash(hash);
  }
}

const fastHasher = (): Argon2Hasher => new Argon2Hasher({ memoryCost: 1024, timeCost: 1 });

function manualClock(start = START): { now(): number; advance(ms: number): void } {
  let time = start;
  return { now: () => time, advance: (ms) => (time += ms) };
}

const hsKey: AccessTokenKey = { kid: 'k1', alg: 'HS256', secret: randomBytes(32) };

function setup(overrides: Partial<AuthServiceOptions> = {}) {
  const clock = manualClock();
  const events: AuthEvent[] = [];
  const store: AuthStore = overrides.store ?? new MemoryAuthStore();
  const hasher = new CountingHasher(overrides.hasher ?? fastHasher());
  const service = new AuthService({
    store,
    hasher,
    tokens: { issuer: 'https://postern.test', audience: 'postern-api', keys: [hsKey] },
    clock,
    onEvent: (event) => events.push(event),
    ...overrides,
    ...(overrides.hasher === undefined ? {} : { hasher: overrides.hasher }),
  });
  return { service, store, clock, events, hasher };
}

async function verifiedUser(
  service: AuthService,
  email = `user-${randomBytes(4).toString('hex')}@example.test`,
) {
  const { userId, verificationToken } = await service.register({ email, password: PASSWORD });
  await service.verifyEmail(verificationToken);
  return { userId, email };
}

async function rejects(promise: Promise<unknown>, code: AuthErrorCode): Promise<AuthError> {
  try {
    await promise;
  } catch (error) {
    expect(AuthError.isInstance(error)).toBe(true);
    expect((error as AuthError).code).toBe(code);
    return error as AuthError;
  }
  throw new Error(`expected ${code}, but it resolved`);
}

describe('AuthService registration and login', () => {
  it('registers, requires verification, then logs in and issues a verifiable pair', async () => {
    const { service, clock } = setup();
    const { userId, verificationToken, alreadyRegistered } = await service.register({
      email: ' Alice@Example.TEST ',
      password: PASSWORD,
    });
    expect(alreadyRegistered).toBe(false);
    await rejects(
      service.login({ email: 'alice@example.test', password: PASSWORD }),
      'EMAIL_NOT_VERIFIED',
    );
    expect(await service.verifyEmail(verificationToken)).toEqual({ userId });
    await rejects(service.verifyEmail(verificationToken), 'TOKEN_INVALID');
    const pair = await service.login({
      email: 'ALICE@example.test',
      password: PASSWORD,
      ip: '192.0.2.7',
      userAgent: 'vitest',
    });
    expect(pair.userId).toBe(userId);
    expect(pair.accessExpiresAt).toBe(Math.floor(START / 1000) * 1000 + 900_000);
    expect(pair.refreshExpiresAt).toBe(START + 14 * 86_400_000);
    expect(pair.refreshToken).toMatch(/^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);
    const claims = await service.verifyAccessToken(pair.accessToken, { checkSession: true });
    expect(claims).toMatchObject({
      sub: userId,
      sid: pair.sessionId,
      iss: 'https://postern.test',
      aud: 'postern-api',
    });
    clock.advance(1_000);
    const sessions = await service.listSessions(userId);
    expect(sessions).toEqual([
      {
        id: pair.sessionId,
        createdAt: START,
        lastUsedAt: START,
        expiresAt: pair.refreshExpiresAt,
        ip: '192.0.2.7',
        userAgent: 'vitest',
      },
    ]);
  });

  it('allows login before verification when configured', async () => {
    const { service } = setup({ requireVerifiedEmail: false });
    await service.register({ email: 'bob@example.test', password: PASSWORD });
    expect(
      (await service.login({ email: 'bob@example.test', password: PASSWORD })).sessionId,
    ).toHaveLength(22);
  });

  it('refuses weak passwords with every reason, before hashing', async () => {
    const { service, hasher } = setup();
    const before = hasher.calls.length;
    const error = await rejects(
      service.register({ email: 'carol.smith@example.test', password: 'carol.smith' }),
      'WEAK_PASSWORD',
    );
    expect(error.reasons).toEqual(['too_short', 'contains_email']);
    expect(
      (
        await rejects(
          service.register({ email: 'x@example.test', password: 'password1234' }),
          'WEAK_PASSWORD',
        )
      ).reasons,
    ).toEqual(['common']);
    expect(
      (
        await rejects(
          service.register({ email: 'x@example.test', password: 'a'.repeat(2_000_000) }),
          'WEAK_PASSWORD',
        )
      ).reasons,
    ).toEqual(['too_long']);
    expect(hasher.calls.slice(before).filter((call) => call.method === 'hash')).toHaveLength(0);
  });

  it('hides a taken email by default and does the same hashing work', async () => {
    const { service, hasher, events } = setup();
    const first = await service.register({ email: 'dave@example.test', password: PASSWORD });
    const hashesBefore = hasher.calls.filter((call) => call.method === 'hash').length;
    const second = await service.register({
      email: 'DAVE@example.test',
      password: 'another long password 9',
    });
    expect(hasher.calls.filter((call) => call.method === 'hash').length).toBe(hashesBefore + 1);
    expect(second.alreadyRegistered).toBe(true);
    expect(second.userId).not.toBe(first.userId);
    await rejects(service.verifyEmail(second.verificationToken), 'TOKEN_INVALID');
    expect(events.find((event) => event.type === 'registration_duplicate')?.userId).toBe(
      first.userId,
    );
  });

  it('reveals a taken email only when configured', async () => {
    const { service } = setup({ revealEmailTaken: true });
    await service.register({ email: 'erin@example.test', password: PASSWORD });
    await rejects(
      service.register({ email: 'erin@example.test', password: PASSWORD }),
      'EMAIL_TAKEN',
    );
  });

  it('does the same hashing work for an unknown email as for a wrong password', async () => {
    const { service, hasher } = setup();
    await verifiedUser(service, 'frank@example.test');
    const start = hasher.calls.length;
    await rejects(
      service.login({ email: 'nobody@example.test', password: 'wrong password here' }),
      'INVALID_CREDENTIALS',
    );
    const unknown = hasher.calls.slice(start);
    const middle = hasher.calls.length;
    await rejects(
      service.login({ email: 'frank@example.test', password: 'wrong password here' }),
      'INVALID_CREDENTIALS',
    );
    const known = hasher.calls.slice(middle);
    expect(unknown.map((call) => call.method)).toEqual(['verify']);
    expect(known.map((call) => call.method)).toEqual(['verify']);
    // The decoy hash has the same scheme and parameters as a real one.
    const parameters = (hash: string | undefined) => hash?.split('$').slice(0, 4).join('$');
    expect(parameters(unknown[0]!.hash)).toBe(parameters(known[0]!.hash));
  });

  it('normalises passwords (NFKC) so equivalent spellings match', async () => {
    const { service } = setup({ requireVerifiedEmail: false });
    await service.register({
      email: 'grace@example.test',
      password: 'ｆｕｌｌｗｉｄｔｈ ｐａｓｓ ７',
    });
    expect(
      (await service.login({ email: 'grace@example.test', password: 'fullwidth pass 7' })).userId,
    ).toBeTruthy();
  });

  it('rejects oversized and malformed inputs before any hashing', async () => {
    const { service, hasher } = setup();
    const before = hasher.calls.length;
    await rejects(
      service.login({ email: 'a@example.test', password: 'x'.repeat(1025) }),
      'INVALID_INPUT',
    );
    await rejects(
      service.login({ email: 'a@example.test', password: 'é'.repeat(600) }),
      'INVALID_INPUT',
    );
    await rejects(service.login({ email: 'not-an-email', password: PASSWORD }), 'INVALID_INPUT');
    await rejects(
      service.login({ email: `${'a'.repeat(5000)}@example.test`, password: PASSWORD }),
      'INVALID_INPUT',
    );
    await rejects(
      service.login({ email: 42 as unknown as string, password: PASSWORD }),
      'INVALID_INPUT',
    );
    await rejects(
      service.register({ email: 'a@b@example.test', password: PASSWORD }),
      'INVALID_INPUT',
    );
    await rejects(
      service.register({ email: 'a b@example.test', password: PASSWORD }),
      'INVALID_INPUT',
    );
    expect(hasher.calls.length).toBe(before);
  });

  it('rehashes at login when the parameters change, and migrates scrypt hashes', async () => {
    const store = new MemoryAuthStore();
    const old = setup({
      store,
      hasher: new Argon2Hasher({ memoryCost: 1024, timeCost: 1 }),
      requireVerifiedEmail: false,
    });
    const { userId } = await old.service.register({
      email: 'heidi@example.test',
      password: PASSWORD,
    });
    const stronger = setup({
      store,
      hasher: new Argon2Hasher({ memoryCost: 2048, timeCost: 2 }),
      requireVerifiedEmail: false,
    });
    await stronger.service.login({ email: 'heidi@example.test', password: PASSWORD });
    expect((await store.getUserById(userId))?.passwordHash).toContain('m=2048,t=2,p=1');
    expect(stronger.events.some((event) => event.type === 'password_rehashed')).toBe(true);

    const salt = randomBytes(16);
    const legacy = `$scrypt$ln=10,r=8,p=1$${salt.toString('base64')}$${scryptSync(PASSWORD, salt, 32, { N: 1024, r: 8, p: 1 }).toString('base64')}`;
    await store.createUser({
      id: '00000000-0000-4000-8000-000000000001',
      email: 'ivan@example.test',
      passwordHash: legacy,
      emailVerified: true,
      createdAt: START,
    });
    await stronger.service.login({ email: 'ivan@example.test', password: PASSWORD });
    expect((await store.getUserById('00000000-0000-4000-8000-000000000001'))?.passwordHash).toMatch(
      /^\$argon2id\$/,
    );
  });
});

describe('AuthService lockout', () => {
  it('delays exponentially, then locks, for known and unknown accounts alike, and resets on success', async () => {
    const { service, clock, events } = setup();
    await verifiedUser(service, 'judy@example.test');
    const attempt = (email: string, password = 'wrong password!!') =>
      service.login({ email, password });
    for (const email of ['judy@example.test', 'ghost@example.test']) {
      for (let index = 0; index < 3; index += 1)
        await rejects(attempt(email), 'INVALID_CREDENTIALS');
      expect((await rejects(attempt(email), 'ACCOUNT_LOCKED')).retryAfterMs).toBe(1_000);
      clock.advance(1_000);
      await rejects(attempt(email), 'INVALID_CREDENTIALS');
      expect((await rejects(attempt(email), 'ACCOUNT_LOCKED')).retryAfterMs).toBe(2_000);
    }
    // Even the right password waits out the delay: the lock never tells a guess from the truth.
    await rejects(attempt('judy@example.test', PASSWORD), 'ACCOUNT_LOCKED');
    clock.advance(2_000);
    await service.login({ email: 'judy@example.test', password: PASSWORD });
    await rejects(attempt('judy@example.test'), 'INVALID_CREDENTIALS');
    await rejects(attempt('judy@example.test'), 'INVALID_CREDENTIALS');
    expect(events.some((event) => event.type === 'login_blocked')).toBe(true);
  });

  it('locks for lockMs after lockAfter failures and emits account_locked', async () => {
    const { service, clock, events } = setup({
      lockout: { freeAttempts: 1, baseDelayMs: 10, maxDelayMs: 10, lockAfter: 3, lockMs: 60_000 },
    });
    for (let index = 0; index < 3; index += 1) {
      await rejects(
        service.login({ email: 'kim@example.test', password: 'wrong password!!' }),
        'INVALID_CREDENTIALS',
      );
      clock.advance(10);
    }
    expect(
      (await rejects(service.login({ email: 'kim@example.test', password: 'x' }), 'ACCOUNT_LOCKED'))
        .retryAfterMs,
    ).toBe(60_000 - 10);
    expect(events.filter((event) => event.type === 'account_locked')).toHaveLength(1);
    clock.advance(60_000);
    await rejects(
      service.login({ email: 'kim@example.test', password: 'wrong password!!' }),
      'INVALID_CREDENTIALS',
    );
  });

  it('throttles an IP spraying many accounts', async () => {
    const { service } = setup({ lockout: { ipFreeAttempts: 2, ipLockAfter: 4 } });
    for (let index = 0; index < 2; index += 1) {
      await rejects(
        service.login({
          email: `spray${index}@example.test`,
          password: 'wrong password!!',
          ip: '198.51.100.9',
        }),
        'INVALID_CREDENTIALS',
      );
    }
    await rejects(
      service.login({
        email: 'fresh@example.test',
        password: 'wrong password!!',
        ip: '198.51.100.9',
      }),
      'ACCOUNT_LOCKED',
    );
    await rejects(
      service.login({
        email: 'fresh@example.test',
        password: 'wrong password!!',
        ip: '198.51.100.10',
      }),
      'INVALID_CREDENTIALS',
    );
  });
});

describe('AuthService refresh tokens', () => {
  async function loggedIn(overrides: Partial<AuthServiceOptions> = {}) {
    const context = setup(overrides);
    const { userId } = await verifiedUser(context.service);
    const { email } = (await context.store.getUserById(userId))!;
    const pair = await context.service.login({ email, password: PASSWORD });
    return { ...context, userId, pair };
  }

  it('rotates on every refresh and spends the old token', async () => {
    const { service, pair, clock } = await loggedIn();
    clock.advance(60_000);
    const next = await service.refresh(pair.refreshToken);
    expect(next.refreshToken).not.toBe(pair.refreshToken);
    expect(next.sessionId).toBe(pair.sessionId);
    expect(next.refreshExpiresAt).toBe(START + 60_000 + 14 * 86_400_000);
    const third = await service.refresh(next.refreshToken);
    expect(third.refreshToken).not.toBe(next.refreshToken);
  });

  it('answers the parent inside the grace window with the successor already issued', async () => {
    const { service, pair, clock, store } = await loggedIn();
    const winner = await service.refresh(pair.refreshToken);
    clock.advance(10_000);
    const loser = await service.refresh(pair.refreshToken);
    expect(loser.refreshToken).toBe(winner.refreshToken);
    expect((await store.getSession(pair.sessionId))?.generation).toBe(1);
    expect((await service.refresh(winner.refreshToken)).sessionId).toBe(pair.sessionId);
  });

  it('revokes the whole family when a spent token is replayed after the window', async () => {
    const { service, pair, clock, events, userId } = await loggedIn();
    const stolen = pair.refreshToken;
    const legit = await service.refresh(pair.refreshToken);
    clock.advance(10_001);
    await rejects(service.refresh(stolen), 'TOKEN_REUSED');
    await rejects(service.refresh(legit.refreshToken), 'TOKEN_INVALID');
    await rejects(
      service.verifyAccessToken(legit.accessToken, { checkSession: true }),
      'TOKEN_INVALID',
    );
    expect(await service.listSessions(userId)).toEqual([]);
    expect(events.find((event) => event.type === 'token_reuse')).toMatchObject({
      userId,
      sessionId: pair.sessionId,
    });
  });

  it('revokes the family when an older generation comes back inside the window', async () => {
    const { service, pair } = await loggedIn();
    const second = await service.refresh(pair.refreshToken);
    await service.refresh(second.refreshToken);
    await rejects(service.refresh(pair.refreshToken), 'TOKEN_REUSED');
  });

  it('with a zero window, treats any second use as reuse', async () => {
    const { service, pair } = await loggedIn({ sessions: { reuseGraceMs: 0 } });
    await service.refresh(pair.refreshToken);
    await rejects(service.refresh(pair.refreshToken), 'TOKEN_REUSED');
  });

  it('lets one of 50 concurrent refreshes win; the others get the same successor', async () => {
    const { service, pair, store } = await loggedIn();
    const results = await Promise.all(
      Array.from({ length: 50 }, () => service.refresh(pair.refreshToken)),
    );
    const tokens = new Set(results.map((result) => result.refreshToken));
    expect(tokens.size).toBe(1);
    expect((await store.getSession(pair.sessionId))?.generation).toBe(1);
    const [successor] = [...tokens];
    expect((await service.refresh(successor!)).sessionId).toBe(pair.sessionId);
  });

  it('enforces the idle timeout and the absolute lifetime; a dead session answers like an unknown one', async () => {
    const idle = await loggedIn({
      sessions: { idleTimeoutMs: 60_000, absoluteTimeoutMs: 150_000 },
    });
    idle.clock.advance(60_000);
    const expired = await rejects(idle.service.refresh(idle.pair.refreshToken), 'TOKEN_INVALID');
    expect(expired.field).toBe('refresh');

    const absolute = await loggedIn({
      sessions: { idleTimeoutMs: 60_000, absoluteTimeoutMs: 150_000 },
    });
    let token = absolute.pair.refreshToken;
    for (let index = 0; index < 2; index += 1) {
      absolute.clock.advance(59_000);
      const next = await absolute.service.refresh(token);
      token = next.refreshToken;
    }
    absolute.clock.advance(32_000);
    await rejects(absolute.service.refresh(token), 'TOKEN_INVALID');
  });

  it('answers a dead session the same on every path (refresh, logout, revoke, checkSession)', async () => {
    const { service, clock } = setup({ sessions: { idleTimeoutMs: 60_000 } });
    const { userId, email } = await verifiedUser(service);
    const pairs = [];
    for (let index = 0; index < 4; index += 1)
      pairs.push(await service.login({ email, password: PASSWORD }));
    clock.advance(60_000);
    await expectDeadSessionAnswers(service, userId, pairs);
  });

  it('never counts dead sessions it revokes (logoutAll, password change and reset events)', async () => {
    const { service, clock, events } = setup({ sessions: { idleTimeoutMs: 60_000 } });
    const { userId, email } = await verifiedUser(service);
    let password = PASSWORD;
    const counts = () =>
      events.flatMap((event) => (event.type === 'sessions_revoked' ? [event.count] : []));
    const loginTwiceThenOnceMore = async () => {
      await service.login({ email, password });
      await service.login({ email, password });
      clock.advance(30_000);
      const alive = await service.login({ email, password });
      // The first two are past their idle expiry, not swept (nothing listed them).
      clock.advance(30_000);
      return alive;
    };
    await loginTwiceThenOnceMore();
    expect(await service.logoutAll(userId)).toBe(1);

    const kept = await loginTwiceThenOnceMore();
    await service.login({ email, password: PASSWORD });
    await service.changePassword({
      userId,
      currentPassword: PASSWORD,
      newPassword: 'a changed passphrase 9',
      keepSessionId: kept.sessionId,
    });
    password = 'a changed passphrase 9';

    clock.advance(120_000);
    await loginTwiceThenOnceMore();
    const reset = await service.requestPasswordReset(email);
    await service.resetPassword(reset!.token, 'a reset passphrase 10');
    expect(counts()).toEqual([1, 1, 1]);
  });

  it('refuses malformed, oversized and forged tokens without touching the session', async () => {
    const { service, pair } = await loggedIn();
    for (const bad of [
      '',
      'x',
      'a.b',
      'x'.repeat(1_000_000),
      `${pair.refreshToken}x`,
      `${pair.sessionId}.${'A'.repeat(43)}`,
      12 as unknown as string,
      null as unknown as string,
    ]) {
      await rejects(service.refresh(bad), 'TOKEN_INVALID');
    }
    expect((await service.refresh(pair.refreshToken)).sessionId).toBe(pair.sessionId);
  });

  it('logs out by refresh token; a bad token is a harmless false', async () => {
    const { service, pair, events } = await loggedIn();
    expect(await service.logout('garbage')).toBe(false);
    expect(await service.logout(`${pair.sessionId}.${'A'.repeat(43)}`)).toBe(false);
    expect(await service.logout(pair.refreshToken)).toBe(true);
    expect(await service.logout(pair.refreshToken)).toBe(false);
    await rejects(
      service.verifyAccessToken(pair.accessToken, { checkSession: true }),
      'TOKEN_INVALID',
    );
    expect((await service.verifyAccessToken(pair.accessToken)).sid).toBe(pair.sessionId);
    expect(
      events.some((event) => event.type === 'session_revoked' && event.reason === 'logout'),
    ).toBe(true);
  });

  it('logs out everywhere, and revokes single sessions by owner', async () => {
    const { service, pair, userId, store } = await loggedIn();
    const { email } = (await store.getUserById(userId))!;
    const second = await service.login({ email, password: PASSWORD });
    expect(await service.revokeSession('someone-else', second.sessionId)).toBe(false);
    expect(await service.revokeSession(userId, second.sessionId)).toBe(true);
    await service.login({ email, password: PASSWORD });
    expect(await service.logoutAll(userId)).toBe(2);
    await rejects(service.refresh(pair.refreshToken), 'TOKEN_INVALID');
  });

  it('kills refresh and session-checked access tokens of a deleted user', async () => {
    const { service, pair, userId } = await loggedIn();
    expect(await service.deleteUser(userId)).toBe(true);
    expect(await service.deleteUser(userId)).toBe(false);
    await rejects(service.refresh(pair.refreshToken), 'TOKEN_INVALID');
    await rejects(
      service.verifyAccessToken(pair.accessToken, { checkSession: true }),
      'TOKEN_INVALID',
    );
  });
});

describe('AuthService access tokens', () => {
  it('signs with the newest key and still verifies tokens of older keys', async () => {
    const store = new MemoryAuthStore();
    const oldKey: AccessTokenKey = {
      kid: 'old',
      alg: 'HS256',
      secret: 'an old secret that is at least 32 bytes long',
    };
    const pair = generateKeyPairSync('ed25519');
    const newKey: AccessTokenKey = {
      kid: 'new',
      alg: 'EdDSA',
      privateKey: pair.privateKey,
      publicKey: pair.publicKey,
    };
    const before = setup({
      store,
      requireVerifiedEmail: false,
      tokens: { issuer: 'i', audience: 'a', keys: [oldKey] },
    });
    await before.service.register({ email: 'kid@example.test', password: PASSWORD });
    const oldToken = (await before.service.login({ email: 'kid@example.test', password: PASSWORD }))
      .accessToken;
    const after = setup({
      store,
      requireVerifiedEmail: false,
      tokens: { issuer: 'i', audience: 'a', keys: [newKey, oldKey] },
    });
    const newToken = (await after.service.login({ email: 'kid@example.test', password: PASSWORD }))
      .accessToken;
    expect(JSON.parse(Buffer.from(newToken.split('.')[0]!, 'base64url').toString())).toMatchObject({
      alg: 'EdDSA',
      kid: 'new',
    });
    expect((await after.service.verifyAccessToken(oldToken)).sub).toBeTruthy();
    expect((await after.service.verifyAccessToken(newToken)).sub).toBeTruthy();
    await rejects(before.service.verifyAccessToken(newToken), 'TOKEN_INVALID');
  });

  it('expires access tokens, with the configured clock tolerance', async () => {
    const { service, clock } = setup({
      requireVerifiedEmail: false,
      tokens: {
        issuer: 'i',
        audience: 'a',
        keys: [hsKey],
        accessTtlMs: 60_000,
        clockToleranceMs: 5_000,
      },
    });
    await service.register({ email: 'exp@example.test', password: PASSWORD });
    const { accessToken } = await service.login({ email: 'exp@example.test', password: PASSWORD });
    clock.advance(64_000);
    expect((await service.verifyAccessToken(accessToken)).sid).toBeTruthy();
    clock.advance(2_000);
    await rejects(service.verifyAccessToken(accessToken), 'TOKEN_EXPIRED');
  });
});

describe('AuthService passwords', () => {
  it('changes a password, keeping only the current session', async () => {
    const { service, userId, email, events } = await (async () => {
      const context = setup();
      const user = await verifiedUser(context.service);
      return { ...context, ...user };
    })();
    const keep = await service.login({ email, password: PASSWORD });
    const other = await service.login({ email, password: PASSWORD });
    await rejects(
      service.changePassword({
        userId,
        currentPassword: 'wrong password!!',
        newPassword: 'a new long password 1',
      }),
      'INVALID_CREDENTIALS',
    );
    await rejects(
      service.changePassword({
        userId: 'nobody',
        currentPassword: PASSWORD,
        newPassword: 'a new long password 1',
      }),
      'INVALID_CREDENTIALS',
    );
    await rejects(
      service.changePassword({ userId, currentPassword: PASSWORD, newPassword: 'short' }),
      'WEAK_PASSWORD',
    );
    await rejects(
      service.changePassword({
        userId,
        currentPassword: 'y'.repeat(5000),
        newPassword: 'a new long password 1',
      }),
      'INVALID_INPUT',
    );
    await service.changePassword({
      userId,
      currentPassword: PASSWORD,
      newPassword: 'a new long password 1',
      keepSessionId: keep.sessionId,
    });
    await rejects(
      service.verifyAccessToken(other.accessToken, { checkSession: true }),
      'TOKEN_INVALID',
    );
    expect((await service.verifyAccessToken(keep.accessToken, { checkSession: true })).sid).toBe(
      keep.sessionId,
    );
    await rejects(service.login({ email, password: PASSWORD }), 'INVALID_CREDENTIALS');
    expect((await service.login({ email, password: 'a new long password 1' })).userId).toBe(userId);
    expect(events.some((event) => event.type === 'password_changed')).toBe(true);
  });

  it('throttles wrong current passwords like logins', async () => {
    const { service } = setup();
    const { userId, email } = await verifiedUser(service);
    for (let index = 0; index < 3; index += 1) {
      await rejects(
        service.changePassword(
          { userId, currentPassword: 'wrong password!!', newPassword: 'a new long password 1' },
          { ip: '192.0.2.9' },
        ),
        'INVALID_CREDENTIALS',
      );
    }
    await rejects(
      service.changePassword({
        userId,
        currentPassword: PASSWORD,
        newPassword: 'a new long password 1',
      }),
      'ACCOUNT_LOCKED',
    );
    await rejects(service.login({ email, password: PASSWORD }), 'ACCOUNT_LOCKED');
  });

  it('sets a password administratively and revokes every session', async () => {
    const { service } = setup();
    const { userId, email } = await verifiedUser(service);
    const pair = await service.login({ email, password: PASSWORD });
    await service.setPassword(userId, 'admin chosen password 5');
    await rejects(service.refresh(pair.refreshToken), 'TOKEN_INVALID');
    await rejects(service.setPassword('nobody', 'admin chosen password 5'), 'INVALID_INPUT');
  });

  it('resets a password with a single-use, expiring token and revokes every session', async () => {
    const { service, clock, store } = setup({ resendCooldownMs: 60_000 });
    const { userId, email } = await verifiedUser(service);
    const pair = await service.login({ email, password: PASSWORD });
    const request = await service.requestPasswordReset(email.toUpperCase());
    expect(request?.userId).toBe(userId);
    expect(await service.requestPasswordReset(email)).toBeNull();
    expect(await service.requestPasswordReset('nobody@example.test')).toBeNull();
    await rejects(service.resetPassword(request!.token, 'short'), 'WEAK_PASSWORD');
    await service.resetPassword(request!.token, 'brand new password 77');
    await rejects(service.resetPassword(request!.token, 'brand new password 78'), 'TOKEN_INVALID');
    await rejects(service.refresh(pair.refreshToken), 'TOKEN_INVALID');
    expect((await service.login({ email, password: 'brand new password 77' })).userId).toBe(userId);

    clock.advance(60_000);
    const older = await service.requestPasswordReset(email);
    clock.advance(60_000);
    const newer = await service.requestPasswordReset(email);
    await rejects(service.resetPassword(older!.token, 'another new password 1'), 'TOKEN_INVALID');
    clock.advance(3_600_000);
    await rejects(service.resetPassword(newer!.token, 'another new password 1'), 'TOKEN_INVALID');
    await rejects(service.resetPassword('not a token', 'another new password 1'), 'TOKEN_INVALID');
    await rejects(
      service.resetPassword(
        `00000000-0000-4000-8000-000000000000.${'A'.repeat(43)}`,
        'another new password 1',
      ),
      'TOKEN_INVALID',
    );
    expect((await store.getUserById(userId))?.emailVerified).toBe(true);
  });

  it('resends verification with a cooldown, never for verified or unknown addresses', async () => {
    const { service, clock } = setup();
    const { verificationToken } = await service.register({
      email: 'liz@example.test',
      password: PASSWORD,
    });
    expect(await service.resendVerification('liz@example.test')).toBeNull();
    clock.advance(60_000);
    const resent = await service.resendVerification('liz@example.test');
    await rejects(service.verifyEmail(verificationToken), 'TOKEN_INVALID');
    clock.advance(86_400_000);
    await rejects(service.verifyEmail(resent!.token), 'TOKEN_INVALID');
    const again = await service.resendVerification('liz@example.test');
    await service.verifyEmail(again!.token);
    clock.advance(60_000);
    expect(await service.resendVerification('liz@example.test')).toBeNull();
    expect(await service.resendVerification('ghost@example.test')).toBeNull();
  });
});

describe('AuthService events and options', () => {
  it('never puts passwords, tokens or email addresses in events, and survives a throwing listener', async () => {
    const events: AuthEvent[] = [];
    const { service } = setup({
      onEvent: (event) => {
        events.push(event);
        throw new Error('listener failure');
      },
    });
    const { verificationToken } = await service.register({
      email: 'mallory@example.test',
      password: PASSWORD,
    });
    await service.verifyEmail(verificationToken);
    await rejects(
      service.login({ email: 'mallory@example.test', password: 'wrong password!!' }),
      'INVALID_CREDENTIALS',
    );
    const pair = await service.login({
      email: 'mallory@example.test',
      password: PASSWORD,
      ip: '203.0.113.5',
      userAgent: 'x'.repeat(2_000),
    });
    await service.refresh(pair.refreshToken);
    const serialized = JSON.stringify(events);
    for (const secret of [
      PASSWORD,
      'wrong password!!',
      'mallory@example.test',
      pair.refreshToken,
      pair.accessToken,
      verificationToken,
    ]) {
      expect(serialized).not.toContain(secret);
    }
    expect(events.map((event) => event.type)).toEqual([
      'registered',
      'email_verified',
      'login_failed',
      'login_succeeded',
      'token_refreshed',
    ]);
    expect(events[3]).toMatchObject({ ip: '203.0.113.5' });
    expect(events[3]!.userAgent).toHaveLength(512);
  });

  it('refuses unusable options', () => {
    const base = {
      store: new MemoryAuthStore(),
      hasher: fastHasher(),
      tokens: { issuer: 'i', audience: 'a', keys: [hsKey] },
    };
    const invalid = (options: Partial<AuthServiceOptions>) => {
      let thrown: unknown;
      try {
        new AuthService({ ...base, ...options });
      } catch (error) {
        thrown = error;
      }
      expect((thrown as AuthError).code).toBe('INVALID_OPTIONS');
    };
    invalid({ sessions: { reuseGraceMs: 60_001 } });
    invalid({ sessions: { idleTimeoutMs: 0 } });
    invalid({ lockout: { freeAttempts: 5, lockAfter: 5 } });
    invalid({ lockout: { windowMs: 1_000, lockMs: 2_000 } });
    invalid({ resendCooldownMs: -1 });
    invalid({ verificationTokenTtlMs: 1.5 });
    invalid({ tokens: { issuer: 'i', audience: 'a', keys: [] } });
    invalid({
      tokens: {
        issuer: 'i',
        audience: 'a',
        keys: [{ kid: 'short', alg: 'HS256', secret: 'too short' }],
      },
    });
    expect(() => new AuthService({ ...base, passwordPolicy: { minLength: 6 } })).toThrow(
      RangeError,
    );
  });
});
