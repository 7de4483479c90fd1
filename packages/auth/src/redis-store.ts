// The README check compiles only files reachable by import, so the ambient .lua declaration is referenced here.
// eslint-disable-next-line @typescript-eslint/triple-slash-reference
/// <reference path="./lua.d.ts" />
import type { Cluster, Redis } from 'ioredis';
import { sha256 } from './crypto.js';
import consumeTokenLua from './lua/consume-token-1.lua';
import cooldownLua from './lua/cooldown-1.lua';
import deleteIfEqualLua from './lua/delete-if-equal-1.lua';
import recordFailureLua from './lua/record-failure-1.lua';
import reserveAttemptLua from './lua/reserve-attempt-1.lua';
import rotateRefreshLua from './lua/rotate-refresh-2.lua';
import settleAttemptLua from './lua/settle-attempt-1.lua';
import updateUserLua from './lua/update-user-2.lua';
import type {
  AttemptReservation,
  AuthStore,
  ConsumeResult,
  FailureRecord,
  NewSession,
  OneTimePurpose,
  ReservedAttempt,
  RotateInput,
  RotateResult,
  SessionRecord,
  UserPatch,
  UserRecord,
} from './store.js';

/** Options of `RedisAuthStore`. */
export interface RedisAuthStoreOptions {
  /** An ioredis client or cluster. The store registers its scripts on it and never closes it. */
  redis: Redis | Cluster;
  /** Prefix of every key. Default: `'postern:auth:'`. */
  prefix?: string;
}

// Versioned command names: two versions of this package on one Redis never run each other's scripts.
const SCRIPTS = {
  // V2: measures the grace window on Redis TIME; answers an expired session like a missing one.
  posternAuthV2RotateRefresh: { numberOfKeys: 2, lua: rotateRefreshLua },
  posternAuthV1RecordFailure: { numberOfKeys: 1, lua: recordFailureLua },
  posternAuthV1ReserveAttempt: { numberOfKeys: 1, lua: reserveAttemptLua },
  posternAuthV1SettleAttempt: { numberOfKeys: 1, lua: settleAttemptLua },
  posternAuthV1ConsumeToken: { numberOfKeys: 1, lua: consumeTokenLua },
  posternAuthV1Cooldown: { numberOfKeys: 1, lua: cooldownLua },
  // V2: takes an expected password hash first (compare-and-swap for rehashing at login).
  posternAuthV2UpdateUser: { numberOfKeys: 1, lua: updateUserLua },
  posternAuthV1DeleteIfEqual: { numberOfKeys: 1, lua: deleteIfEqualLua },
} as const;

type ScriptName = keyof typeof SCRIPTS;
type Scripted = Record<ScriptName, (...args: Array<string | number>) => Promise<unknown>>;

/**
 * An `AuthStore` on Redis (ioredis 5 or 6, single node or Cluster). Each compare-and-swap is one
 * Lua script on one key slot: a session and its spent-token set share the `{sessionId}` hash tag,
 * a user and its session index share `{userId}`. Records carry native expiry, so dead sessions,
 * counters, cooldowns and tokens leave Redis on their own. The refresh grace window is measured on
 * Redis's clock (`TIME`), not the callers', so processes with skewed clocks agree on it.
 */
export class RedisAuthStore implements AuthStore {
  readonly #redis: Redis | Cluster;
  readonly #scripts: Scripted;
  readonly #prefix: string;

  /** Registers the Lua scripts on the client (`defineCommand`, once per client). */
  constructor(options: RedisAuthStoreOptions) {
    this.#redis = options.redis;
    this.#prefix = options.prefix ?? 'postern:auth:';
    const client = options.redis as unknown as Partial<Scripted> & Pick<Redis, 'defineCommand'>;
    for (const [name, definition] of Object.entries(SCRIPTS)) {
      if (typeof client[name as ScriptName] !== 'function') client.defineCommand(name, definition);
    }
    this.#scripts = client as Scripted;
  }

  async createUser(user: UserRecord): Promise<boolean> {
    const userKey = this.#userKey(user.id);
    // The user hash goes first: a crash before the email index leaves an unreachable record, never a taken email with no user.
    const fresh = await this.#redis.hsetnx(userKey, 'id', user.id);
    if (fresh === 0) return false;
    await this.#redis.hset(userKey, {
      email: user.email,
      passwordHash: user.passwordHash,
      emailVerified: user.emailVerified ? '1' : '0',
      createdAt: String(user.createdAt),
    });
    const claimed = await this.#redis.set(this.#emailKey(user.email), user.id, 'NX');
    if (claimed === null) {
      await this.#redis.del(userKey);
      return false;
    }
    return true;
  }

  async getUserById(userId: string): Promise<UserRecord | null> {
    const hash = await this.#redis.hgetall(this.#userKey(userId));
    const { id, email, passwordHash, emailVerified, createdAt } = hash;
    if (id === undefined || email === undefined || passwordHash === undefined) return null;
    return {
      id,
      email,
      passwordHash,
      emailVerified: emailVerified === '1',
      createdAt: Number(createdAt),
    };
  }

  async getUserByEmail(email: string): Promise<UserRecord | null> {
    const id = await this.#redis.get(this.#emailKey(email));
    if (id === null) return null;
    const user = await this.getUserById(id);
    return user?.email === email ? user : null;
  }

  async updateUser(userId: string, patch: UserPatch): Promise<boolean> {
    const fields: string[] = [];
    if (patch.passwordHash !== undefined) fields.push('passwordHash', patch.passwordHash);
    if (patch.emailVerified !== undefined)
      fields.push('emailVerified', patch.emailVerified ? '1' : '0');
    if (fields.length === 0 && patch.ifPasswordHash === undefined)
      return (await this.#redis.exists(this.#userKey(userId))) === 1;
    return (
      (await this.#scripts.posternAuthV2UpdateUser(
        this.#userKey(userId),
        patch.ifPasswordHash ?? '',
        ...fields,
      )) === 1
    );
  }

  async deleteUser(userId: string): Promise<boolean> {
    const userKey = this.#userKey(userId);
    const email = await this.#redis.hget(userKey, 'email');
    const deleted = await this.#redis.del(userKey);
    if (email !== null)
      await this.#scripts.posternAuthV1DeleteIfEqual(this.#emailKey(email), userId);
    await this.deleteUserSessions(userId);
    await this.#redis.del(this.#oneTimeKey('verify-email', userId));
    await this.#redis.del(this.#oneTimeKey('reset-password', userId));
    return deleted === 1;
  }

  async createSession(session: NewSession): Promise<void> {
    const key = this.#sessionKey(session.id);
    const idleExpiresAt = Math.min(session.idleExpiresAt, session.absoluteExpiresAt);
    const fields: Record<string, string> = {
      userId: session.userId,
      createdAt: String(session.createdAt),
      lastUsedAt: String(session.createdAt),
      idleExpiresAt: String(idleExpiresAt),
      absoluteExpiresAt: String(session.absoluteExpiresAt),
      generation: '0',
      tokenHash: session.tokenHash,
    };
    if (session.ip !== undefined) fields['ip'] = session.ip;
    if (session.userAgent !== undefined) fields['userAgent'] = session.userAgent;
    const index = this.#userSessionsKey(session.userId);
    // The index first: a session that exists is always findable by logoutAll. Its expiry only
    // grows, so a session with a longer life than the newest one never drops out of it.
    const lifetimeMs = Math.max(1, session.absoluteExpiresAt - session.createdAt);
    const [, ttl] = checked(await this.#redis.multi().sadd(index, session.id).pttl(index).exec());
    // -1 (no expiry yet) also sets it.
    if (Number(ttl) < lifetimeMs) await this.#redis.pexpire(index, lifetimeMs);
    checked(
      await this.#redis
        .multi()
        .hset(key, fields)
        .pexpire(key, Math.max(1, idleExpiresAt - session.createdAt))
        .exec(),
    );
  }

  async getSession(sessionId: string): Promise<SessionRecord | null> {
    return toSession(sessionId, await this.#redis.hgetall(this.#sessionKey(sessionId)));
  }

  async rotateRefreshToken(input: RotateInput): Promise<RotateResult> {
    const key = this.#sessionKey(input.sessionId);
    const reply = (await this.#scripts.posternAuthV2RotateRefresh(
      key,
      `${key}:spent`,
      input.presentedHash,
      input.nextHash,
      input.nextSealed,
      String(input.now),
      String(input.graceMs),
      String(input.idleExpiresAt),
    )) as Array<string | number>;
    const status = Number(reply[0]);
    if (status === 1 || status === 2) {
      const hash: Record<string, string> = {};
      for (let index = 1; index + 1 < reply.length; index += 2)
        hash[String(reply[index])] = String(reply[index + 1]);
      const session = toSession(input.sessionId, hash);
      if (session === null) return { status: 'invalid' };
      if (status === 1) return { status: 'rotated', session };
      return { status: 'grace', session, successorSealed: hash['successorSealed'] ?? '' };
    }
    if (status === 3 || status === 4) {
      const userId = String(reply[1]);
      await this.#redis.srem(this.#userSessionsKey(userId), input.sessionId);
      // Expired (4) answers like a session Redis has already evicted: invalid either way.
      return status === 3 ? { status: 'reused', userId } : { status: 'invalid' };
    }
    return { status: 'invalid' };
  }

  async listSessions(userId: string, now: number): Promise<SessionRecord[]> {
    const index = this.#userSessionsKey(userId);
    const ids = await this.#redis.smembers(index);
    const sessions: SessionRecord[] = [];
    const gone: string[] = [];
    for (const id of ids) {
      const session = await this.getSession(id);
      if (
        session?.userId !== userId ||
        now >= session.idleExpiresAt ||
        now >= session.absoluteExpiresAt
      )
        gone.push(id);
      else sessions.push(session);
    }
    if (gone.length > 0) await this.#redis.srem(index, ...gone);
    return sessions.sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  async deleteSession(
    userId: string,
    sessionId: string,
    now: number = Date.now(),
  ): Promise<boolean> {
    const key = this.#sessionKey(sessionId);
    const [owner, idleExpiresAt, absoluteExpiresAt] = await this.#redis.hmget(
      key,
      'userId',
      'idleExpiresAt',
      'absoluteExpiresAt',
    );
    if (owner !== userId) return false;
    const deleted = await this.#redis.del(key, `${key}:spent`);
    await this.#redis.srem(this.#userSessionsKey(userId), sessionId);
    // A session past its expiry at `now` that Redis has not evicted yet answers as if it had.
    return deleted > 0 && now < Number(idleExpiresAt) && now < Number(absoluteExpiresAt);
  }

  async deleteUserSessions(
    userId: string,
    exceptSessionId?: string,
    now: number = Date.now(),
  ): Promise<number> {
    const index = this.#userSessionsKey(userId);
    const ids = (await this.#redis.smembers(index)).filter((id) => id !== exceptSessionId);
    let count = 0;
    for (const id of ids) {
      const key = this.#sessionKey(id);
      // Read and delete in one transaction (one slot: both keys share the hash tag). A session
      // past its expiry at `now` that Redis has not evicted yet is deleted but not counted.
      const [expiries] = checked(
        await this.#redis
          .multi()
          .hmget(key, 'idleExpiresAt', 'absoluteExpiresAt')
          .del(key, `${key}:spent`)
          .exec(),
      ) as [Array<string | null>, number];
      const [idleExpiresAt, absoluteExpiresAt] = expiries;
      if (
        typeof idleExpiresAt === 'string' &&
        typeof absoluteExpiresAt === 'string' &&
        now < Number(idleExpiresAt) &&
        now < Number(absoluteExpiresAt)
      )
        count += 1;
    }
    if (ids.length > 0) await this.#redis.srem(index, ...ids);
    return count;
  }

  async recordFailure(key: string, now: number, windowMs: number): Promise<FailureRecord> {
    const reply = (await this.#scripts.posternAuthV1RecordFailure(
      this.#failureKey(key),
      String(now),
      String(windowMs),
    )) as number[];
    return { count: Number(reply[0]), lastFailureAt: Number(reply[1]) };
  }

  async getFailures(key: string, now: number, windowMs: number): Promise<FailureRecord | null> {
    const [count, lastFailureAt] = await this.#redis.hmget(
      this.#failureKey(key),
      'count',
      'lastFailureAt',
    );
    if (
      count === null ||
      count === undefined ||
      lastFailureAt === null ||
      lastFailureAt === undefined
    )
      return null;
    if (now - Number(lastFailureAt) >= windowMs) return null;
    return { count: Number(count), lastFailureAt: Number(lastFailureAt) };
  }

  async clearFailures(key: string): Promise<void> {
    await this.#redis.del(this.#failureKey(key));
  }

  async reserveAttempt(key: string, reservation: AttemptReservation): Promise<ReservedAttempt> {
    const reply = (await this.#scripts.posternAuthV1ReserveAttempt(
      this.#failureKey(key),
      reservation.id,
      String(reservation.now),
      String(reservation.windowMs),
      String(reservation.abandonAfterMs),
    )) as number[];
    return {
      count: Number(reply[0]),
      lastFailureAt: Number(reply[1]),
      inFlight: Number(reply[2]),
    };
  }

  async settleAttempt(
    key: string,
    reservation: AttemptReservation,
    failed: boolean,
  ): Promise<void> {
    await this.#scripts.posternAuthV1SettleAttempt(
      this.#failureKey(key),
      reservation.id,
      failed ? '1' : '0',
      String(reservation.now),
      String(reservation.windowMs),
    );
  }

  async putOneTimeToken(
    purpose: OneTimePurpose,
    userId: string,
    tokenHash: string,
    expiresAt: number,
  ): Promise<void> {
    const key = this.#oneTimeKey(purpose, userId);
    // Gone at expiry: an expired token answers like a missing one, so nothing is kept past it.
    checked(
      await this.#redis
        .multi()
        .del(key)
        .hset(key, { tokenHash, expiresAt: String(expiresAt) })
        .pexpireat(key, expiresAt)
        .exec(),
    );
  }

  async consumeOneTimeToken(
    purpose: OneTimePurpose,
    userId: string,
    tokenHash: string,
    now: number,
  ): Promise<ConsumeResult> {
    const reply = Number(
      await this.#scripts.posternAuthV1ConsumeToken(
        this.#oneTimeKey(purpose, userId),
        tokenHash,
        String(now),
      ),
    );
    // -1 (the live token, expired at `now`; removed) answers like a token Redis has already
    // evicted: invalid either way.
    return reply === 1 ? 'ok' : 'invalid';
  }

  async deleteOneTimeToken(purpose: OneTimePurpose, userId: string): Promise<void> {
    await this.#redis.del(this.#oneTimeKey(purpose, userId));
  }

  async acquireCooldown(key: string, now: number, cooldownMs: number): Promise<boolean> {
    return (
      Number(
        await this.#scripts.posternAuthV1Cooldown(
          `${this.#prefix}cooldown:${key}`,
          String(now),
          String(cooldownMs),
        ),
      ) === 1
    );
  }

  #userKey(userId: string): string {
    return `${this.#prefix}user:{${userId}}`;
  }
  #userSessionsKey(userId: string): string {
    return `${this.#prefix}user:{${userId}}:sessions`;
  }
  #emailKey(email: string): string {
    // Hashed so no address appears in key names (SCAN output, slow logs, monitoring).
    return `${this.#prefix}email:${sha256(email)}`;
  }
  #sessionKey(sessionId: string): string {
    return `${this.#prefix}session:{${sessionId}}`;
  }
  #failureKey(key: string): string {
    return `${this.#prefix}fail:${key}`;
  }
  #oneTimeKey(purpose: OneTimePurpose, userId: string): string {
    return `${this.#prefix}once:${purpose}:{${userId}}`;
  }
}

function toSession(id: string, hash: Record<string, string>): SessionRecord | null {
  const { userId, tokenHash } = hash;
  if (userId === undefined || tokenHash === undefined) return null;
  const session: SessionRecord = {
    id,
    userId,
    createdAt: Number(hash['createdAt']),
    lastUsedAt: Number(hash['lastUsedAt']),
    idleExpiresAt: Number(hash['idleExpiresAt']),
    absoluteExpiresAt: Number(hash['absoluteExpiresAt']),
    generation: Number(hash['generation']),
    tokenHash,
  };
  if (hash['parentHash'] !== undefined) session.parentHash = hash['parentHash'];
  if (hash['rotatedAt'] !== undefined) session.rotatedAt = Number(hash['rotatedAt']);
  if (hash['successorSealed'] !== undefined) session.successorSealed = hash['successorSealed'];
  if (hash['ip'] !== undefined) session.ip = hash['ip'];
  if (hash['userAgent'] !== undefined) session.userAgent = hash['userAgent'];
  return session;
}

/**
 * The replies of a MULTI, or the first command's error: ioredis resolves `exec()` with per-command
 * errors inside (out of memory, a key of the wrong type), and a session that was never stored
 * must not be handed out as a login.
 */
function checked(replies: [Error | null, unknown][] | null): unknown[] {
  if (replies === null) throw new Error('Redis transaction was aborted');
  return replies.map(([error, value]) => {
    if (error !== null) throw error;
    return value;
  });
}
