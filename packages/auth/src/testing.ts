// @postern/auth/testing: the AuthStore contract suite. It imports vitest (an optional peer dependency).
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { randomToken, sha256 } from './crypto.js';
import type { AuthStore, NewSession, UserRecord } from './store.js';

/** Options of `runAuthStoreContract`. */
export interface AuthStoreContractOptions {
  /** Called once after the suite, e.g. to delete keys and close clients. */
  teardown?: () => Promise<void> | void;
}

const NOW = 1_800_000_000_000;
const HOUR = 3_600_000;

function user(overrides: Partial<UserRecord> = {}): UserRecord {
  const id = randomUUID();
  return {
    id,
    email: `${id}@example.test`,
    passwordHash: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA',
    emailVerified: false,
    createdAt: NOW,
    ...overrides,
  };
}

function session(userId: string, overrides: Partial<NewSession> = {}): NewSession {
  return {
    id: randomToken(16),
    userId,
    tokenHash: sha256(randomToken(32)),
    createdAt: NOW,
    idleExpiresAt: NOW + 14 * 24 * HOUR,
    absoluteExpiresAt: NOW + 30 * 24 * HOUR,
    ...overrides,
  };
}

function rotation(
  sessionId: string,
  presentedHash: string,
  overrides: { now?: number; graceMs?: number } = {},
) {
  const nextHash = sha256(randomToken(32));
  const now = overrides.now ?? NOW + 1_000;
  return {
    sessionId,
    presentedHash,
    nextHash,
    nextSealed: `sealed-${nextHash}`,
    now,
    graceMs: overrides.graceMs ?? 10_000,
    idleExpiresAt: now + 14 * 24 * HOUR,
  };
}

/**
 * Runs the behaviour every `AuthStore` must have (atomic rotation with reuse detection, expiry,
 * counters, single-use tokens, cooldowns) against the store `create` returns. Call it inside a
 * vitest test file; `create` is called once per test. Records use random ids, so a shared Redis
 * or database is fine.
 */
export function runAuthStoreContract(
  name: string,
  create: () => AuthStore | Promise<AuthStore>,
  options: AuthStoreContractOptions = {},
): void {
  describe(`AuthStore contract: ${name}`, () => {
    if (options.teardown !== undefined) afterAll(options.teardown);

    describe('users', () => {
      it('creates a user and finds it by id and by email', async () => {
        const store = await create();
        const record = user();
        expect(await store.createUser(record)).toBe(true);
        expect(await store.getUserById(record.id)).toEqual(record);
        expect(await store.getUserByEmail(record.email)).toEqual(record);
        expect(await store.getUserById(randomUUID())).toBeNull();
        expect(await store.getUserByEmail(`${randomUUID()}@example.test`)).toBeNull();
      });

      it('refuses a second user with the same email, even when both race', async () => {
        const store = await create();
        const email = `${randomUUID()}@example.test`;
        const results = await Promise.all(
          Array.from({ length: 10 }, () => store.createUser(user({ email }))),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
        const winner = await store.getUserByEmail(email);
        expect(winner?.email).toBe(email);
      });

      it('updates only existing users', async () => {
        const store = await create();
        const record = user();
        await store.createUser(record);
        expect(
          await store.updateUser(record.id, { passwordHash: 'new-hash', emailVerified: true }),
        ).toBe(true);
        expect(await store.getUserById(record.id)).toMatchObject({
          passwordHash: 'new-hash',
          emailVerified: true,
        });
        expect(await store.updateUser(record.id, {})).toBe(true);
        expect(await store.updateUser(randomUUID(), { emailVerified: true })).toBe(false);
      });

      it('changes a password only while the stored hash is the expected one, atomically (ifPasswordHash)', async () => {
        const store = await create();
        const record = user({ passwordHash: 'old-hash' });
        await store.createUser(record);
        expect(
          await store.updateUser(record.id, { passwordHash: 'x', ifPasswordHash: 'other-hash' }),
        ).toBe(false);
        expect((await store.getUserById(record.id))?.passwordHash).toBe('old-hash');
        // Many rehashes of the same old hash race: exactly one lands, the rest change nothing.
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, index) =>
            store.updateUser(record.id, {
              passwordHash: `rehash-${String(index)}`,
              ifPasswordHash: 'old-hash',
            }),
          ),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
        const winner = results.indexOf(true);
        expect((await store.getUserById(record.id))?.passwordHash).toBe(`rehash-${String(winner)}`);
        expect(
          await store.updateUser(randomUUID(), { passwordHash: 'x', ifPasswordHash: 'old-hash' }),
        ).toBe(false);
      });

      it('deletes a user with sessions and tokens, freeing the email', async () => {
        const store = await create();
        const record = user();
        await store.createUser(record);
        const live = session(record.id);
        await store.createSession(live);
        await store.putOneTimeToken('reset-password', record.id, 'hash', NOW + HOUR);
        expect(await store.deleteUser(record.id)).toBe(true);
        expect(await store.getUserById(record.id)).toBeNull();
        expect(await store.getUserByEmail(record.email)).toBeNull();
        expect(await store.getSession(live.id)).toBeNull();
        expect(await store.consumeOneTimeToken('reset-password', record.id, 'hash', NOW)).toBe(
          'invalid',
        );
        expect(await store.deleteUser(record.id)).toBe(false);
        expect(await store.createUser(user({ email: record.email }))).toBe(true);
      });
    });

    describe('sessions and rotation', () => {
      it('stores a session and reads it back', async () => {
        const store = await create();
        const live = session('user-1', { ip: '192.0.2.1', userAgent: 'test agent' });
        await store.createSession(live);
        expect(await store.getSession(live.id)).toMatchObject({
          id: live.id,
          userId: 'user-1',
          tokenHash: live.tokenHash,
          generation: 0,
          createdAt: NOW,
          lastUsedAt: NOW,
          idleExpiresAt: live.idleExpiresAt,
          absoluteExpiresAt: live.absoluteExpiresAt,
          ip: '192.0.2.1',
          userAgent: 'test agent',
        });
        expect(await store.getSession(randomToken(16))).toBeNull();
      });

      it('rotates the live token: the old one is spent, the new one is live', async () => {
        const store = await create();
        const live = session(randomUUID());
        await store.createSession(live);
        const input = rotation(live.id, live.tokenHash);
        const result = await store.rotateRefreshToken(input);
        expect(result.status).toBe('rotated');
        const after = await store.getSession(live.id);
        expect(after).toMatchObject({
          tokenHash: input.nextHash,
          parentHash: live.tokenHash,
          generation: 1,
          rotatedAt: input.now,
          lastUsedAt: input.now,
        });
        expect(after?.successorSealed).toBe(input.nextSealed);
        const next = await store.rotateRefreshToken(
          rotation(live.id, input.nextHash, { now: input.now + 1 }),
        );
        expect(next.status).toBe('rotated');
      });

      it('answers the parent inside the grace window with the sealed successor and changes nothing', async () => {
        const store = await create();
        const live = session(randomUUID());
        await store.createSession(live);
        const first = rotation(live.id, live.tokenHash);
        await store.rotateRefreshToken(first);
        const again = await store.rotateRefreshToken(
          rotation(live.id, live.tokenHash, { now: first.now + 10_000 }),
        );
        expect(again).toMatchObject({ status: 'grace', successorSealed: first.nextSealed });
        expect((await store.getSession(live.id))?.tokenHash).toBe(first.nextHash);
      });

      it('revokes the family when the parent comes back after the grace window', async () => {
        const store = await create();
        const live = session(randomUUID());
        await store.createSession(live);
        const first = rotation(live.id, live.tokenHash);
        await store.rotateRefreshToken(first);
        const late = await store.rotateRefreshToken(
          rotation(live.id, live.tokenHash, { now: first.now + 10_001 }),
        );
        expect(late).toEqual({ status: 'reused', userId: live.userId });
        expect(await store.getSession(live.id)).toBeNull();
        expect((await store.rotateRefreshToken(rotation(live.id, first.nextHash))).status).toBe(
          'invalid',
        );
      });

      it('revokes the family when an older generation comes back, even inside the window', async () => {
        const store = await create();
        const live = session(randomUUID());
        await store.createSession(live);
        const first = rotation(live.id, live.tokenHash);
        await store.rotateRefreshToken(first);
        const second = rotation(live.id, first.nextHash, { now: first.now + 1 });
        await store.rotateRefreshToken(second);
        const replay = await store.rotateRefreshToken(
          rotation(live.id, live.tokenHash, { now: first.now + 2 }),
        );
        expect(replay.status).toBe('reused');
        expect(await store.listSessions(live.userId, NOW)).toEqual([]);
      });

      it('treats a zero grace window as strict: any second use is a reuse', async () => {
        const store = await create();
        const live = session(randomUUID());
        await store.createSession(live);
        const first = rotation(live.id, live.tokenHash, { graceMs: 0 });
        await store.rotateRefreshToken(first);
        expect(
          (
            await store.rotateRefreshToken(
              rotation(live.id, live.tokenHash, { now: first.now + 1, graceMs: 0 }),
            )
          ).status,
        ).toBe('reused');
      });

      it('ignores a hash that is none of the family and leaves the session alone', async () => {
        const store = await create();
        const live = session(randomUUID());
        await store.createSession(live);
        expect(await store.rotateRefreshToken(rotation(live.id, sha256('forged')))).toEqual({
          status: 'invalid',
        });
        expect(await store.rotateRefreshToken(rotation(randomToken(16), live.tokenHash))).toEqual({
          status: 'invalid',
        });
        expect((await store.getSession(live.id))?.tokenHash).toBe(live.tokenHash);
      });

      it('lets exactly one of many concurrent rotations of one token win', async () => {
        const store = await create();
        const live = session(randomUUID());
        await store.createSession(live);
        const inputs = Array.from({ length: 50 }, () => rotation(live.id, live.tokenHash));
        const results = await Promise.all(inputs.map((input) => store.rotateRefreshToken(input)));
        const winners = results.flatMap((result, index) =>
          result.status === 'rotated' ? [inputs[index]!] : [],
        );
        expect(winners).toHaveLength(1);
        expect(results.filter((result) => result.status === 'grace')).toHaveLength(49);
        for (const result of results)
          if (result.status === 'grace')
            expect(result.successorSealed).toBe(winners[0]!.nextSealed);
        expect((await store.getSession(live.id))?.tokenHash).toBe(winners[0]!.nextHash);
      });

      it('expires a session at its idle expiry and deletes it', async () => {
        const store = await create();
        const live = session(randomUUID(), { idleExpiresAt: NOW + HOUR });
        await store.createSession(live);
        expect(
          await store.rotateRefreshToken(rotation(live.id, live.tokenHash, { now: NOW + HOUR })),
        ).toEqual({ status: 'expired', userId: live.userId });
        expect(await store.getSession(live.id)).toBeNull();
      });

      it('never extends a session past its absolute expiry', async () => {
        const store = await create();
        const live = session(randomUUID(), {
          idleExpiresAt: NOW + 2 * HOUR,
          absoluteExpiresAt: NOW + 3 * HOUR,
        });
        await store.createSession(live);
        const first = rotation(live.id, live.tokenHash, { now: NOW + HOUR });
        const result = await store.rotateRefreshToken(first);
        expect(result.status === 'rotated' && result.session.idleExpiresAt).toBe(NOW + 3 * HOUR);
        expect(
          (
            await store.rotateRefreshToken(
              rotation(live.id, first.nextHash, { now: NOW + 3 * HOUR }),
            )
          ).status,
        ).toBe('expired');
      });

      it('lists live sessions oldest first and deletes them by owner', async () => {
        const store = await create();
        const userId = randomUUID();
        const older = session(userId, { createdAt: NOW - 1_000 });
        const newer = session(userId);
        const dead = session(userId, { createdAt: NOW - 2 * HOUR, idleExpiresAt: NOW - HOUR });
        for (const entry of [newer, older, dead]) await store.createSession(entry);
        await store.createSession(session(randomUUID()));
        expect((await store.listSessions(userId, NOW)).map((entry) => entry.id)).toEqual([
          older.id,
          newer.id,
        ]);
        expect(await store.deleteSession('someone-else', older.id)).toBe(false);
        expect(await store.deleteSession(userId, older.id)).toBe(true);
        expect(await store.deleteSession(userId, older.id)).toBe(false);
        expect((await store.listSessions(userId, NOW)).map((entry) => entry.id)).toEqual([
          newer.id,
        ]);
      });

      it('deletes every session of a user but the one kept', async () => {
        const store = await create();
        const userId = randomUUID();
        const sessions = [session(userId), session(userId), session(userId)];
        for (const entry of sessions) await store.createSession(entry);
        expect(await store.deleteUserSessions(userId, sessions[0]!.id)).toBe(2);
        expect((await store.listSessions(userId, NOW)).map((entry) => entry.id)).toEqual([
          sessions[0]!.id,
        ]);
        expect(await store.deleteUserSessions(userId)).toBe(1);
        expect(await store.deleteUserSessions(userId)).toBe(0);
        expect(await store.getSession(sessions[0]!.id)).toBeNull();
      });
    });

    describe('failure counters', () => {
      it('counts failures inside the window and starts again after it', async () => {
        const store = await create();
        const key = `account:${randomUUID()}`;
        expect(await store.getFailures(key, NOW, HOUR)).toBeNull();
        expect(await store.recordFailure(key, NOW, HOUR)).toEqual({ count: 1, lastFailureAt: NOW });
        expect(await store.recordFailure(key, NOW + 10, HOUR)).toEqual({
          count: 2,
          lastFailureAt: NOW + 10,
        });
        expect(await store.getFailures(key, NOW + 20, HOUR)).toEqual({
          count: 2,
          lastFailureAt: NOW + 10,
        });
        expect(await store.getFailures(key, NOW + 10 + HOUR, HOUR)).toBeNull();
        expect(await store.recordFailure(key, NOW + 10 + HOUR, HOUR)).toEqual({
          count: 1,
          lastFailureAt: NOW + 10 + HOUR,
        });
        await store.clearFailures(key);
        expect(await store.getFailures(key, NOW + 10 + HOUR, HOUR)).toBeNull();
      });

      it('counts concurrent failures exactly', async () => {
        const store = await create();
        const key = `ip:${randomUUID()}`;
        await Promise.all(Array.from({ length: 25 }, () => store.recordFailure(key, NOW, HOUR)));
        expect((await store.getFailures(key, NOW, HOUR))?.count).toBe(25);
      });
    });

    describe('single-use tokens and cooldowns', () => {
      it('spends a token once', async () => {
        const store = await create();
        const userId = randomUUID();
        await store.putOneTimeToken('verify-email', userId, 'hash-1', NOW + HOUR);
        expect(await store.consumeOneTimeToken('verify-email', userId, 'wrong', NOW)).toBe(
          'invalid',
        );
        expect(await store.consumeOneTimeToken('reset-password', userId, 'hash-1', NOW)).toBe(
          'invalid',
        );
        const results = await Promise.all(
          Array.from({ length: 10 }, () =>
            store.consumeOneTimeToken('verify-email', userId, 'hash-1', NOW),
          ),
        );
        expect(results.filter((result) => result === 'ok')).toHaveLength(1);
        expect(await store.consumeOneTimeToken('verify-email', userId, 'hash-1', NOW)).toBe(
          'invalid',
        );
      });

      it('invalidates an older token when a new one is stored', async () => {
        const store = await create();
        const userId = randomUUID();
        await store.putOneTimeToken('reset-password', userId, 'old', NOW + HOUR);
        await store.putOneTimeToken('reset-password', userId, 'new', NOW + HOUR);
        expect(await store.consumeOneTimeToken('reset-password', userId, 'old', NOW)).toBe(
          'invalid',
        );
        expect(await store.consumeOneTimeToken('reset-password', userId, 'new', NOW)).toBe('ok');
      });

      it('reports an expired token once and removes it; deletes on request', async () => {
        const store = await create();
        const userId = randomUUID();
        await store.putOneTimeToken('reset-password', userId, 'hash', NOW + HOUR);
        expect(await store.consumeOneTimeToken('reset-password', userId, 'hash', NOW + HOUR)).toBe(
          'expired',
        );
        expect(await store.consumeOneTimeToken('reset-password', userId, 'hash', NOW)).toBe(
          'invalid',
        );
        await store.putOneTimeToken('verify-email', userId, 'hash', NOW + HOUR);
        await store.deleteOneTimeToken('verify-email', userId);
        expect(await store.consumeOneTimeToken('verify-email', userId, 'hash', NOW)).toBe(
          'invalid',
        );
      });

      it('grants a cooldown once until it ends', async () => {
        const store = await create();
        const key = `verify:${randomUUID()}`;
        expect(await store.acquireCooldown(key, NOW, 60_000)).toBe(true);
        expect(await store.acquireCooldown(key, NOW + 59_999, 60_000)).toBe(false);
        expect(await store.acquireCooldown(key, NOW + 60_000, 60_000)).toBe(true);
        const racers = await Promise.all(
          Array.from({ length: 10 }, () => store.acquireCooldown(`${key}:race`, NOW, 60_000)),
        );
        expect(racers.filter(Boolean)).toHaveLength(1);
      });
    });
  });
}
