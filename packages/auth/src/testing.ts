// @postern/auth/testing: the AuthStore contract suite. It imports vitest (an optional peer dependency).
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { randomToken, sha256 } from './crypto.js';
import type { AuthStore, NewSession, UserRecord } from './store.js';

/** Options of `runAuthStoreContract`. */
export interface AuthStoreContractOptions {
  /** Called once after the suite, e.g. to delete keys and close clients. */
  teardown?: () => Promise<void> | void;
  /**
   * Which clock the store measures the refresh-token grace window on, to also run the tests
   * specific to it: `'caller'` (the `now` passed in, like `MemoryAuthStore`) or `'store'` (its own
   * clock, like `RedisAuthStore` with Redis `TIME`, so processes with skewed clocks agree).
   * Default: neither; only the tests that hold for both run.
   */
  graceWindowClock?: 'caller' | 'store';
}

const NOW = 1_800_000_000_000;
const HOUR = 3_600_000;
/** A grace window short enough to wait out for real, for stores that read their own clock. */
const SHORT_GRACE_MS = 50;

/**
 * Waits in real time. Only for what no injected clock reaches: a store's own clock (Redis TIME)
 * and its native expiry.
 */
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

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

/**
 * Sessions of one user at `now` (the real clock): one alive, and three dead ones that a store with
 * native expiry may or may not hold yet: idle-expired an hour ago, past its absolute expiry, and
 * one of 1 ms that such a store drops during a short wait while another keeps it.
 */
function liveAndDeadSessions(
  userId: string,
  now: number,
): { alive: NewSession; idle: NewSession; absolute: NewSession; evicted: NewSession } {
  return {
    alive: session(userId, {
      createdAt: now,
      idleExpiresAt: now + HOUR,
      absoluteExpiresAt: now + 2 * HOUR,
    }),
    idle: session(userId, {
      createdAt: now - 2 * HOUR,
      idleExpiresAt: now - HOUR,
      absoluteExpiresAt: now + HOUR,
    }),
    absolute: session(userId, {
      createdAt: now - 3 * HOUR,
      idleExpiresAt: now + HOUR,
      absoluteExpiresAt: now - HOUR,
    }),
    evicted: session(userId, {
      createdAt: now,
      idleExpiresAt: now + 1,
      absoluteExpiresAt: now + 1,
    }),
  };
}

function rotation(
  sessionId: string,
  presentedHash: string,
  overrides: { now?: number; graceMs?: number; idleExpiresAt?: number } = {},
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
    idleExpiresAt: overrides.idleExpiresAt ?? now + 14 * 24 * HOUR,
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
        // Past the window on the caller's clock and, for a store with a clock of its own, on that one too.
        await sleep(SHORT_GRACE_MS * 3);
        const late = await store.rotateRefreshToken(
          rotation(live.id, live.tokenHash, {
            now: first.now + SHORT_GRACE_MS + 1,
            graceMs: SHORT_GRACE_MS,
          }),
        );
        expect(late).toEqual({ status: 'reused', userId: live.userId });
        expect(await store.getSession(live.id)).toBeNull();
        expect((await store.rotateRefreshToken(rotation(live.id, first.nextHash))).status).toBe(
          'invalid',
        );
      });

      if (options.graceWindowClock === 'caller') {
        it('measures the grace window on the `now` it is given', async () => {
          const store = await create();
          const live = session(randomUUID());
          await store.createSession(live);
          const first = rotation(live.id, live.tokenHash);
          await store.rotateRefreshToken(first);
          const late = await store.rotateRefreshToken(
            rotation(live.id, live.tokenHash, { now: first.now + 10_001 }),
          );
          expect(late).toEqual({ status: 'reused', userId: live.userId });
        });
      }

      if (options.graceWindowClock === 'store') {
        it('measures the grace window on its own clock: a caller whose clock runs ahead still gets the successor', async () => {
          const store = await create();
          const live = session(randomUUID());
          await store.createSession(live);
          const first = rotation(live.id, live.tokenHash);
          await store.rotateRefreshToken(first);
          // Another process, its clock a minute ahead, presents the parent at once.
          const ahead = await store.rotateRefreshToken(
            rotation(live.id, live.tokenHash, { now: first.now + 60_000 }),
          );
          expect(ahead).toMatchObject({ status: 'grace', successorSealed: first.nextSealed });
          expect((await store.getSession(live.id))?.tokenHash).toBe(first.nextHash);
        });

        it('measures the grace window on its own clock: a caller whose clock runs behind cannot stretch it', async () => {
          const store = await create();
          const live = session(randomUUID());
          await store.createSession(live);
          // Rotated by a process whose clock runs a minute ahead...
          const first = rotation(live.id, live.tokenHash, { now: NOW + 60_000 });
          await store.rotateRefreshToken(first);
          await sleep(SHORT_GRACE_MS * 3);
          // ...then replayed, after the window, through a process whose clock reads long before it.
          const replay = await store.rotateRefreshToken(
            rotation(live.id, live.tokenHash, { now: NOW + 1_000, graceMs: SHORT_GRACE_MS }),
          );
          expect(replay).toEqual({ status: 'reused', userId: live.userId });
          expect(await store.getSession(live.id)).toBeNull();
        });
      }

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

      it('answers a token of an idle-expired session as invalid, like an unknown one, and deletes it', async () => {
        const store = await create();
        const live = session(randomUUID(), { idleExpiresAt: NOW + HOUR });
        await store.createSession(live);
        expect(
          await store.rotateRefreshToken(rotation(live.id, live.tokenHash, { now: NOW + HOUR })),
        ).toEqual({ status: 'invalid' });
        expect(await store.getSession(live.id)).toBeNull();
        expect(await store.listSessions(live.userId, NOW)).toEqual([]);
        // Gone for good: the same token is invalid even on a clock that reads before the expiry.
        expect(await store.rotateRefreshToken(rotation(live.id, live.tokenHash))).toEqual({
          status: 'invalid',
        });
      });

      it('answers a spent token of an expired session as invalid too, never as reuse or grace', async () => {
        const store = await create();
        const live = session(randomUUID(), { idleExpiresAt: NOW + HOUR });
        await store.createSession(live);
        const first = rotation(live.id, live.tokenHash, {
          now: NOW + 1_000,
          idleExpiresAt: NOW + HOUR,
        });
        await store.rotateRefreshToken(first);
        expect(
          await store.rotateRefreshToken(rotation(live.id, live.tokenHash, { now: NOW + HOUR })),
        ).toEqual({ status: 'invalid' });
        expect(await store.getSession(live.id)).toBeNull();
      });

      it('answers the same whether or not the store has already evicted the expired session', async () => {
        const store = await create();
        // A session of 1 ms: a store with native expiry drops it during the wait, another keeps it.
        const live = session(randomUUID(), { idleExpiresAt: NOW + 1, absoluteExpiresAt: NOW + 1 });
        await store.createSession(live);
        await sleep(20);
        expect(
          await store.rotateRefreshToken(rotation(live.id, live.tokenHash, { now: NOW + 1 })),
        ).toEqual({ status: 'invalid' });
        expect(await store.getSession(live.id)).toBeNull();
        expect(await store.listSessions(live.userId, NOW + 1)).toEqual([]);
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
          await store.rotateRefreshToken(
            rotation(live.id, first.nextHash, { now: NOW + 3 * HOUR }),
          ),
        ).toEqual({ status: 'invalid' });
        expect(await store.getSession(live.id)).toBeNull();
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

      it('deletes a dead session by owner but answers false, whether or not the store has evicted it yet', async () => {
        const store = await create();
        const userId = randomUUID();
        // On the real clock, so a store that leaves time to native expiry is checked as it runs.
        const { alive, idle, absolute, evicted } = liveAndDeadSessions(userId, Date.now());
        for (const entry of [alive, idle, absolute, evicted]) await store.createSession(entry);
        await sleep(20);
        expect(await store.deleteSession(userId, alive.id, Date.now())).toBe(true);
        for (const entry of [idle, absolute, evicted]) {
          expect(await store.deleteSession(userId, entry.id, Date.now())).toBe(false);
          expect(await store.getSession(entry.id)).toBeNull();
        }
        expect(await store.listSessions(userId, Date.now())).toEqual([]);
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

      it('deletes dead sessions with the rest but never counts them, whether or not the store has evicted them yet', async () => {
        const store = await create();
        const userId = randomUUID();
        // On the real clock, so a store that leaves time to native expiry is checked as it runs.
        const now = Date.now();
        const { alive, idle, absolute, evicted } = liveAndDeadSessions(userId, now);
        const kept = session(userId, {
          createdAt: now,
          idleExpiresAt: now + HOUR,
          absoluteExpiresAt: now + 2 * HOUR,
        });
        for (const entry of [alive, kept, idle, absolute, evicted])
          await store.createSession(entry);
        await sleep(20);
        expect(await store.deleteUserSessions(userId, kept.id, Date.now())).toBe(1);
        for (const entry of [alive, idle, absolute, evicted])
          expect(await store.getSession(entry.id)).toBeNull();
        expect((await store.listSessions(userId, Date.now())).map((entry) => entry.id)).toEqual([
          kept.id,
        ]);
        expect(await store.deleteUserSessions(userId, undefined, Date.now())).toBe(1);
        expect(await store.deleteUserSessions(userId, undefined, Date.now())).toBe(0);
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

      // reserveAttempt and settleAttempt are optional: without them the per-IP limit is counted
      // after hashing (see AuthStore). A store with them must pass all of these.
      const attempts = (store: AuthStore) =>
        store.reserveAttempt === undefined || store.settleAttempt === undefined
          ? undefined
          : {
              reserve: store.reserveAttempt.bind(store),
              settle: store.settleAttempt.bind(store),
            };
      const reservation = (now: number, id = randomToken(12)) => ({
        id,
        now,
        windowMs: HOUR,
        abandonAfterMs: 60_000,
      });

      it('reserves concurrent attempts atomically: each gets its own count and sees the others in flight', async () => {
        const ops = attempts(await create());
        if (ops === undefined) return;
        const key = `ip:${randomUUID()}`;
        const seen = await Promise.all(
          Array.from({ length: 30 }, () => ops.reserve(key, reservation(NOW))),
        );
        expect(seen.map((entry) => entry.count).sort((a, b) => a - b)).toEqual(
          Array.from({ length: 30 }, (_, index) => index + 1),
        );
        for (const entry of seen) {
          expect(entry.inFlight).toBe(entry.count - 1);
          expect(entry.lastFailureAt).toBe(NOW);
        }
      });

      it('moves lastFailureAt only for a failure, and takes a success back, deleting a counter at zero', async () => {
        const store = await create();
        const ops = attempts(store);
        if (ops === undefined) return;
        const key = `ip:${randomUUID()}`;
        const lone = reservation(NOW);
        expect(await ops.reserve(key, lone)).toEqual({ count: 1, lastFailureAt: NOW, inFlight: 0 });
        await ops.settle(key, lone, false);
        expect(await store.getFailures(key, NOW, HOUR)).toBeNull();

        await store.recordFailure(key, NOW, HOUR);
        const failing = reservation(NOW + 10);
        const right = reservation(NOW + 20);
        expect(await ops.reserve(key, failing)).toEqual({
          count: 2,
          lastFailureAt: NOW,
          inFlight: 0,
        });
        expect(await ops.reserve(key, right)).toEqual({
          count: 3,
          lastFailureAt: NOW,
          inFlight: 1,
        });
        await ops.settle(key, failing, true);
        expect(await store.getFailures(key, NOW + 30, HOUR)).toEqual({
          count: 3,
          lastFailureAt: NOW + 10,
        });
        await ops.settle(key, right, false);
        expect(await store.getFailures(key, NOW + 30, HOUR)).toEqual({
          count: 2,
          lastFailureAt: NOW + 10,
        });
        // Settling again, or an id never reserved, changes nothing.
        await ops.settle(key, right, false);
        await ops.settle(key, reservation(NOW + 40), false);
        // A failure settled late never moves lastFailureAt backwards.
        const late = reservation(NOW + 5);
        await ops.reserve(key, late);
        await ops.settle(key, late, true);
        expect(await store.getFailures(key, NOW + 40, HOUR)).toEqual({
          count: 3,
          lastFailureAt: NOW + 10,
        });
      });

      it('starts a counter idle for the window again from the attempts still in flight', async () => {
        const store = await create();
        const ops = attempts(store);
        if (ops === undefined) return;
        const key = `ip:${randomUUID()}`;
        for (let index = 0; index < 3; index += 1) await store.recordFailure(key, NOW, HOUR);
        const early = reservation(NOW + HOUR - 1);
        expect((await ops.reserve(key, early)).count).toBe(4);
        expect(await ops.reserve(key, reservation(NOW + HOUR))).toEqual({
          count: 2,
          lastFailureAt: NOW + HOUR,
          inFlight: 1,
        });
        // A failure on a counter that is gone starts a new one.
        const other = `ip:${randomUUID()}`;
        await ops.settle(other, reservation(NOW), true);
        expect(await store.getFailures(other, NOW, HOUR)).toEqual({ count: 1, lastFailureAt: NOW });
      });

      it('stops waiting for a reservation lost with its process, and keeps it counted', async () => {
        const store = await create();
        const ops = attempts(store);
        if (ops === undefined) return;
        const key = `ip:${randomUUID()}`;
        const lost = reservation(NOW);
        await ops.reserve(key, lost);
        expect(await ops.reserve(key, reservation(NOW + 60_000))).toMatchObject({
          count: 2,
          inFlight: 1,
        });
        const next = reservation(NOW + 60_001);
        expect(await ops.reserve(key, next)).toMatchObject({ count: 3, inFlight: 1 });
        // Settling the lost one as a success no longer takes anything back.
        await ops.settle(key, lost, false);
        expect((await store.getFailures(key, NOW + 60_001, HOUR))?.count).toBe(3);
      });

      it('counts concurrent reservations and settlements exactly', async () => {
        const store = await create();
        const ops = attempts(store);
        if (ops === undefined) return;
        const key = `ip:${randomUUID()}`;
        const held = Array.from({ length: 10 }, () => reservation(NOW));
        for (const entry of held) await ops.reserve(key, entry);
        await Promise.all([
          ...Array.from({ length: 20 }, () => ops.reserve(key, reservation(NOW))),
          ...held.slice(0, 6).map((entry) => ops.settle(key, entry, false)),
          ...held.slice(6).map((entry) => ops.settle(key, entry, true)),
        ]);
        expect(await store.getFailures(key, NOW, HOUR)).toEqual({ count: 24, lastFailureAt: NOW });
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

      it('answers an expired token as invalid, like an unknown one, at any time after expiry, and removes it', async () => {
        const store = await create();
        const userId = randomUUID();
        // At the expiry, and long after it (past any retention a store with native expiry may use).
        for (const late of [NOW + HOUR, NOW + HOUR + 1, NOW + HOUR + 30 * 24 * HOUR]) {
          await store.putOneTimeToken('reset-password', userId, 'hash', NOW + HOUR);
          expect(await store.consumeOneTimeToken('reset-password', userId, 'hash', late)).toBe(
            'invalid',
          );
          // Gone for good: invalid even on a clock that reads before the expiry.
          expect(await store.consumeOneTimeToken('reset-password', userId, 'hash', NOW)).toBe(
            'invalid',
          );
        }
        await store.putOneTimeToken('reset-password', userId, 'hash', NOW + HOUR);
        expect(
          await store.consumeOneTimeToken('reset-password', userId, 'hash', NOW + HOUR - 1),
        ).toBe('ok');
      });

      it('answers the same whether or not the store has already evicted the expired token', async () => {
        const store = await create();
        const userId = randomUUID();
        // Expiring on the real clock in 5 ms: a store with native expiry drops it during the wait.
        const expiresAt = Date.now() + 5;
        await store.putOneTimeToken('verify-email', userId, 'hash', expiresAt);
        await sleep(30);
        expect(await store.consumeOneTimeToken('verify-email', userId, 'hash', expiresAt)).toBe(
          'invalid',
        );
        await store.putOneTimeToken('verify-email', userId, 'hash', expiresAt);
        await sleep(30);
        expect(
          await store.consumeOneTimeToken('verify-email', userId, 'hash', expiresAt + 24 * HOUR),
        ).toBe('invalid');
        expect(await store.consumeOneTimeToken('verify-email', userId, 'hash', NOW)).toBe(
          'invalid',
        );
      });

      it('deletes a token on request', async () => {
        const store = await create();
        const userId = randomUUID();
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
