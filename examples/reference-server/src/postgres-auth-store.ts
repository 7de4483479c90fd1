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
} from '@postern/auth';
import type { Kysely, Selectable } from 'kysely';
import type { Database, UsersTable } from './db/schema.js';

/** Options of `PostgresAuthStore`. */
export interface PostgresAuthStoreOptions {
  /** The typed query layer over the `users` table. */
  db: Kysely<Database>;
  /**
   * Where sessions, lockout counters, single-use tokens and cooldowns live: `RedisAuthStore` in
   * production (native expiry, shared by every API process), `MemoryAuthStore` for a first look.
   */
  sessions: AuthStore;
}

function toUser(row: Selectable<UsersTable>): UserRecord {
  return {
    id: row.id,
    email: row.email,
    passwordHash: row.password_hash,
    emailVerified: row.email_verified,
    createdAt: row.created_at,
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * An `AuthStore` written as any consumer of @postern/auth would: users in PostgreSQL, where they
 * anchor the foreign keys (deleting a user cascades to its domains, aliases and logs), and the
 * hot, expiring records (sessions, counters, single-use tokens) in a second store.
 */
export class PostgresAuthStore implements AuthStore {
  readonly #db: Kysely<Database>;
  readonly #sessions: AuthStore;
  /** Counts a login attempt on its IP before hashing; present when the sessions store has it. */
  readonly reserveAttempt?: (
    key: string,
    reservation: AttemptReservation,
  ) => Promise<ReservedAttempt>;
  /** Settles an attempt `reserveAttempt` counted; present when the sessions store has it. */
  readonly settleAttempt?: (
    key: string,
    reservation: AttemptReservation,
    failed: boolean,
  ) => Promise<void>;

  constructor(options: PostgresAuthStoreOptions) {
    this.#db = options.db;
    this.#sessions = options.sessions;
    // Passed through only as a pair, and only when the sessions store has them: without them
    // AuthService counts an IP's failures after hashing, which concurrent guesses can outrun.
    const sessions = options.sessions;
    if (sessions.reserveAttempt !== undefined && sessions.settleAttempt !== undefined) {
      this.reserveAttempt = (key, reservation) => sessions.reserveAttempt!(key, reservation);
      this.settleAttempt = (key, reservation, failed) =>
        sessions.settleAttempt!(key, reservation, failed);
    }
  }

  /** Adds a user; false when the email (or id) is taken, decided by the unique constraints, even under races. */
  async createUser(user: UserRecord): Promise<boolean> {
    const row = await this.#db
      .insertInto('users')
      .values({
        id: user.id,
        email: user.email,
        password_hash: user.passwordHash,
        email_verified: user.emailVerified,
        created_at: user.createdAt,
      })
      .onConflict((oc) => oc.doNothing())
      .returning('id')
      .executeTakeFirst();
    return row !== undefined;
  }

  async getUserById(userId: string): Promise<UserRecord | null> {
    if (!UUID.test(userId)) return null;
    const row = await this.#db
      .selectFrom('users')
      .selectAll()
      .where('id', '=', userId)
      .executeTakeFirst();
    return row === undefined ? null : toUser(row);
  }

  async getUserByEmail(email: string): Promise<UserRecord | null> {
    const row = await this.#db
      .selectFrom('users')
      .selectAll()
      .where('email', '=', email)
      .executeTakeFirst();
    return row === undefined ? null : toUser(row);
  }

  async updateUser(userId: string, patch: UserPatch): Promise<boolean> {
    if (!UUID.test(userId)) return false;
    const values: { password_hash?: string; email_verified?: boolean } = {};
    if (patch.passwordHash !== undefined) values.password_hash = patch.passwordHash;
    if (patch.emailVerified !== undefined) values.email_verified = patch.emailVerified;
    const expected = patch.ifPasswordHash;
    if (Object.keys(values).length === 0) {
      const user = await this.getUserById(userId);
      return user !== null && (expected === undefined || user.passwordHash === expected);
    }
    // With `ifPasswordHash`, a compare-and-swap in one statement: a login's rehash never
    // overwrites a password changed meanwhile.
    let update = this.#db.updateTable('users').set(values).where('id', '=', userId);
    if (expected !== undefined) update = update.where('password_hash', '=', expected);
    const result = await update.executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /**
   * Revokes the user's sessions and tokens first (so a failure below leaves a logged-out user, never
   * a deleted user with live sessions), then deletes the row: PostgreSQL cascades the rest.
   */
  async deleteUser(userId: string): Promise<boolean> {
    if (!UUID.test(userId)) return false;
    await this.#sessions.deleteUserSessions(userId);
    await this.#sessions.deleteOneTimeToken('verify-email', userId);
    await this.#sessions.deleteOneTimeToken('reset-password', userId);
    const result = await this.#db.deleteFrom('users').where('id', '=', userId).executeTakeFirst();
    return result.numDeletedRows > 0n;
  }

  createSession(session: NewSession): Promise<void> {
    return this.#sessions.createSession(session);
  }

  getSession(sessionId: string): Promise<SessionRecord | null> {
    return this.#sessions.getSession(sessionId);
  }

  rotateRefreshToken(input: RotateInput): Promise<RotateResult> {
    return this.#sessions.rotateRefreshToken(input);
  }

  listSessions(userId: string, now: number): Promise<SessionRecord[]> {
    return this.#sessions.listSessions(userId, now);
  }

  deleteSession(userId: string, sessionId: string, now?: number): Promise<boolean> {
    return this.#sessions.deleteSession(userId, sessionId, now);
  }

  deleteUserSessions(userId: string, exceptSessionId?: string, now?: number): Promise<number> {
    return this.#sessions.deleteUserSessions(userId, exceptSessionId, now);
  }

  recordFailure(key: string, now: number, windowMs: number): Promise<FailureRecord> {
    return this.#sessions.recordFailure(key, now, windowMs);
  }

  getFailures(key: string, now: number, windowMs: number): Promise<FailureRecord | null> {
    return this.#sessions.getFailures(key, now, windowMs);
  }

  clearFailures(key: string): Promise<void> {
    return this.#sessions.clearFailures(key);
  }

  putOneTimeToken(
    purpose: OneTimePurpose,
    userId: string,
    tokenHash: string,
    expiresAt: number,
  ): Promise<void> {
    return this.#sessions.putOneTimeToken(purpose, userId, tokenHash, expiresAt);
  }

  consumeOneTimeToken(
    purpose: OneTimePurpose,
    userId: string,
    tokenHash: string,
    now: number,
  ): Promise<ConsumeResult> {
    return this.#sessions.consumeOneTimeToken(purpose, userId, tokenHash, now);
  }

  deleteOneTimeToken(purpose: OneTimePurpose, userId: string): Promise<void> {
    return this.#sessions.deleteOneTimeToken(purpose, userId);
  }

  acquireCooldown(key: string, now: number, cooldownMs: number): Promise<boolean> {
    return this.#sessions.acquireCooldown(key, now, cooldownMs);
  }
}
