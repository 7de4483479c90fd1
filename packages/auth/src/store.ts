/** A user as the store keeps it. `email` is already normalised (NFKC, trimmed, lower case). */
export interface UserRecord {
  id: string;
  email: string;
  /** A self-describing hash string (argon2id PHC, or a legacy bcrypt/scrypt hash). */
  passwordHash: string;
  emailVerified: boolean;
  /** Epoch ms. */
  createdAt: number;
}

/** The fields of a user that `updateUser` may change. */
export interface UserPatch {
  passwordHash?: string;
  emailVerified?: boolean;
  /**
   * Compare-and-swap: change nothing and resolve false unless the stored `passwordHash` equals
   * this (a login's rehash must never overwrite a password changed meanwhile). Both shipped
   * stores honour it atomically; a store that ignores it reopens that race.
   */
  ifPasswordHash?: string;
}

/** A session: one login, one refresh-token family. Token hashes are SHA-256, base64url. */
export interface SessionRecord {
  id: string;
  userId: string;
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms of the last login or refresh. */
  lastUsedAt: number;
  /** Epoch ms after which the session is dead unless refreshed before. */
  idleExpiresAt: number;
  /** Epoch ms after which the session is dead whatever happens. */
  absoluteExpiresAt: number;
  /** How many times the refresh token was rotated. */
  generation: number;
  /** Hash of the live refresh token. */
  tokenHash: string;
  /** Hash of the token the live one replaced (accepted inside the grace window), if any. */
  parentHash?: string;
  /** Epoch ms of the last rotation, if any. */
  rotatedAt?: number;
  /** The live token, encrypted with a key only the parent token derives (for the grace answer). */
  successorSealed?: string;
  ip?: string;
  userAgent?: string;
}

/** What `createSession` needs. */
export interface NewSession {
  id: string;
  userId: string;
  tokenHash: string;
  createdAt: number;
  idleExpiresAt: number;
  absoluteExpiresAt: number;
  ip?: string;
  userAgent?: string;
}

/** What `rotateRefreshToken` needs. All of it is decided by the caller; the store only compares and swaps. */
export interface RotateInput {
  sessionId: string;
  /** Hash of the token the client presented. */
  presentedHash: string;
  /** Hash of the successor to install if the presented token is live. */
  nextHash: string;
  /** The successor, sealed with a key derived from the presented token. */
  nextSealed: string;
  /**
   * Epoch ms, on the caller's clock: compared with the session's expiries and recorded as
   * `rotatedAt` and `lastUsedAt`.
   */
  now: number;
  /**
   * How long the parent of the live token stays acceptable after a rotation, in ms. A store shared
   * by several processes measures it on a clock of its own (`RedisAuthStore`: Redis `TIME`), so
   * processes whose clocks disagree by more than the window still agree on it; a store used by one
   * process may measure it on `now` (`MemoryAuthStore`, whose tests inject the clock).
   */
  graceMs: number;
  /** The new idle expiry (epoch ms) if the rotation happens; capped by the absolute expiry. */
  idleExpiresAt: number;
}

/**
 * The outcome of one atomic rotation:
 * - `rotated`: the presented token was live; it is spent and `nextHash` is live now.
 * - `grace`: the presented token is the parent of the live one and the rotation is younger than
 *   the grace window; nothing changed; `successorSealed` is the live token, sealed.
 * - `reused`: the presented token was spent earlier (or is the parent outside the window):
 *   the session is deleted (the whole family is revoked).
 * - `invalid`: no such session, the hash belongs to none of its tokens, or the session's idle or
 *   absolute expiry has passed at `now` (the session is then deleted). An expired session answers
 *   exactly like a missing one, so the answer never depends on whether a store with native expiry
 *   has evicted the record yet.
 * - `expired`: deprecated, never returned by the shipped stores; `AuthService` treats it as `invalid`.
 */
export type RotateResult =
  | { status: 'rotated'; session: SessionRecord }
  | { status: 'grace'; session: SessionRecord; successorSealed: string }
  | { status: 'reused'; userId: string }
  | { status: 'invalid' }
  /** @deprecated An expired session is `invalid`; kept so older custom stores still compile. */
  | { status: 'expired'; userId: string };

/** A failure counter (per account or per IP). */
export interface FailureRecord {
  count: number;
  /** Epoch ms of the latest failure (for a counter `reserveAttempt` started, of its start until then). */
  lastFailureAt: number;
}

/** An attempt counted before it is checked and hashed; see `AuthStore.reserveAttempt`. */
export interface AttemptReservation {
  /** Unique per attempt (random), so settling one never settles another. */
  id: string;
  /** Epoch ms, on the caller's clock. */
  now: number;
  /** A counter whose latest failure is older than this starts again, in ms. */
  windowMs: number;
  /** A reservation unsettled for this long is taken as lost with its process, in ms. */
  abandonAfterMs: number;
}

/** What `reserveAttempt` saw, atomically with counting the attempt. */
export interface ReservedAttempt extends FailureRecord {
  /** Other attempts of the same key still in flight (reserved, not settled, not abandoned). */
  inFlight: number;
}

/** What a single-use token is for. */
export type OneTimePurpose = 'verify-email' | 'reset-password';

/**
 * The outcome of consuming a single-use token:
 * - `ok`: the token was the live one and had not expired; it is spent.
 * - `invalid`: not the live token (unknown, replaced, spent or deleted), or its expiry has passed
 *   at `now` (it is then removed). An expired token answers exactly like a missing one, so the
 *   answer never depends on whether a store with native expiry has evicted the record yet.
 * - `expired`: deprecated, never returned by the shipped stores; `AuthService` treats it as `invalid`.
 */
export type ConsumeResult =
  | 'ok'
  | 'invalid'
  /** @deprecated An expired token is `invalid`; kept so older custom stores still compile. */
  | 'expired';

/**
 * Where @postern/auth keeps users, sessions, counters and single-use tokens. Every method that
 * compares and changes must do so atomically: two processes sharing the store must never both win.
 * Times are passed in (epoch ms); the one exception is the refresh grace window, which a shared
 * store should measure on its own clock (see `RotateInput.graceMs`). A store may also set native
 * expiry (Redis PEXPIRE) so dead records disappear. Run `runAuthStoreContract` from
 * `@postern/auth/testing` against any implementation.
 */
export interface AuthStore {
  /** Adds a user; resolves false (and changes nothing) when the email is taken. */
  createUser(user: UserRecord): Promise<boolean>;
  getUserById(userId: string): Promise<UserRecord | null>;
  getUserByEmail(email: string): Promise<UserRecord | null>;
  /** Changes a user; resolves false if there is no such user (or `ifPasswordHash` does not match). */
  updateUser(userId: string, patch: UserPatch): Promise<boolean>;
  /** Deletes a user with every session and single-use token; resolves false if there was none. */
  deleteUser(userId: string): Promise<boolean>;

  createSession(session: NewSession): Promise<void>;
  getSession(sessionId: string): Promise<SessionRecord | null>;
  /** Compare-and-swap of the refresh token; see `RotateResult`. Must be atomic. */
  rotateRefreshToken(input: RotateInput): Promise<RotateResult>;
  /** The user's sessions that are alive at `now`. */
  listSessions(userId: string, now: number): Promise<SessionRecord[]>;
  /**
   * Deletes one session if it belongs to `userId`; resolves whether it existed and was alive at
   * `now` (epoch ms, on the caller's clock; default: `Date.now()`). A dead session is deleted too
   * but answers false, as one a store with native expiry has already evicted.
   */
  deleteSession(userId: string, sessionId: string, now?: number): Promise<boolean>;
  /**
   * Deletes every session of a user except `exceptSessionId`; resolves how many of them were alive
   * at `now` (epoch ms, on the caller's clock; default: `Date.now()`). Dead sessions (idle or
   * absolute expiry passed) are deleted too but not counted, so the count never depends on whether
   * a store with native expiry has evicted them yet.
   */
  deleteUserSessions(userId: string, exceptSessionId?: string, now?: number): Promise<number>;

  /**
   * Counts one failure; a counter whose latest failure is older than `windowMs` starts again at 1.
   * `AuthService` calls it to count an account's attempt before hashing, so it must be atomic.
   */
  recordFailure(key: string, now: number, windowMs: number): Promise<FailureRecord>;
  /**
   * Optional, together with `settleAttempt`: counts an attempt before it is checked and hashed,
   * atomically, and answers what `AuthService` needs to decide on it alone: the count with this
   * attempt in it and how many other attempts are still in flight (reserved, not settled). Unlike
   * `recordFailure` it leaves `lastFailureAt` alone (only a failure moves it), so a right password
   * never starts a delay. A counter whose latest failure is older than `windowMs` starts again
   * from the attempts still in flight. A reservation older than `abandonAfterMs` was lost with its
   * process: it is no longer in flight, and stays counted. Both shipped stores implement it; a
   * store without it can only count an IP's failures after hashing, so concurrent attempts from
   * one IP can pass its limit.
   */
  reserveAttempt?(key: string, reservation: AttemptReservation): Promise<ReservedAttempt>;
  /**
   * Settles a reservation, atomically: `failed` keeps its count and moves `lastFailureAt` to
   * `reservation.now` (never backwards); otherwise its count is taken back and a counter left at
   * zero is deleted. Settling a reservation that is not in flight (settled already, abandoned, or
   * dropped when its counter started again) changes no count, except that a failure on a counter
   * that is not running starts a new one at 1.
   */
  settleAttempt?(key: string, reservation: AttemptReservation, failed: boolean): Promise<void>;
  /** The counter, or null if none or older than `windowMs`. */
  getFailures(key: string, now: number, windowMs: number): Promise<FailureRecord | null>;
  clearFailures(key: string): Promise<void>;

  /** Stores the one live single-use token of `purpose` for a user, replacing any older one. */
  putOneTimeToken(
    purpose: OneTimePurpose,
    userId: string,
    tokenHash: string,
    expiresAt: number,
  ): Promise<void>;
  /**
   * Atomically spends the token if it is the live one and unexpired at `now`; see `ConsumeResult`.
   * The live token, expired or not, is removed by any attempt that presents it.
   */
  consumeOneTimeToken(
    purpose: OneTimePurpose,
    userId: string,
    tokenHash: string,
    now: number,
  ): Promise<ConsumeResult>;
  /** Removes the live single-use token of `purpose`, if any. */
  deleteOneTimeToken(purpose: OneTimePurpose, userId: string): Promise<void>;

  /** Claims a cooldown: true (and starts it) if none is running for `key` at `now`, else false. */
  acquireCooldown(key: string, now: number, cooldownMs: number): Promise<boolean>;
}
