import { randomUUID } from 'node:crypto';
import { randomToken, safeEqual, seal, sha256, unseal } from './crypto.js';
import { normalizeEmail } from './email.js';
import { AuthError } from './errors.js';
import type { AuthEvent, AuthEventListener } from './events.js';
import { Argon2Hasher, type Hasher } from './hasher.js';
import {
  checkPassword,
  isOversized,
  passwordPolicy,
  type PasswordPolicy,
  type PasswordPolicyOptions,
} from './password-policy.js';
import type {
  AttemptReservation,
  AuthStore,
  FailureRecord,
  OneTimePurpose,
  SessionRecord,
} from './store.js';
import { AccessTokens, type AccessTokenClaims, type AccessTokenOptions } from './tokens.js';

/** A source of time. */
export interface Clock {
  /** Epoch ms. */
  now(): number;
}

/** Session lifetimes and reuse detection. */
export interface SessionOptions {
  /** A session not refreshed for this long dies, in ms. Default: 1_209_600_000 (14 d). */
  idleTimeoutMs?: number;
  /** A session dies this long after login whatever happens, in ms. Default: 2_592_000_000 (30 d). */
  absoluteTimeoutMs?: number;
  /**
   * How long the parent of the live refresh token is still accepted after a rotation (it gets the
   * successor already issued), in ms, 0-60_000. 0 makes every second use a reuse. Default: 10_000.
   */
  reuseGraceMs?: number;
}

/** Failed-login throttling, per account (by email, existing or not) and per IP. */
export interface LockoutOptions {
  /** Failures per account before delays start. Default: 3. */
  freeAttempts?: number;
  /** First delay; it doubles with each further failure, in ms. Default: 1_000. */
  baseDelayMs?: number;
  /** Longest delay before the lock, in ms. Default: 60_000. */
  maxDelayMs?: number;
  /** Failures per account that lock it for `lockMs`. Default: 10. */
  lockAfter?: number;
  /** Length of a lock, in ms. Default: 900_000 (15 min). */
  lockMs?: number;
  /** A counter is forgotten this long after its latest failure, in ms. Default: 3_600_000 (1 h). */
  windowMs?: number;
  /** Failures per IP before delays start. Default: 20. */
  ipFreeAttempts?: number;
  /** Failures per IP that lock the IP for `lockMs`. Default: 100. */
  ipLockAfter?: number;
}

/** Options of `AuthService`. */
export interface AuthServiceOptions {
  /** Where users, sessions and counters live: `MemoryAuthStore`, `RedisAuthStore`, or your own. */
  store: AuthStore;
  /** Password hashing. Default: `new Argon2Hasher()` (argon2id, m=19456 KiB, t=2, p=1). */
  hasher?: Hasher;
  /** Access-token (JWT) settings: issuer, audience, keys. */
  tokens: AccessTokenOptions;
  /** Session lifetimes and the reuse grace window. */
  sessions?: SessionOptions;
  /** Failed-login throttling and locks. */
  lockout?: LockoutOptions;
  /** Password rules. Default: NIST SP 800-63B, at least 12 characters. */
  passwordPolicy?: PasswordPolicyOptions;
  /** Time source. Default: `Date.now`. */
  clock?: Clock;
  /** Audit events; see `AuthEvent`. Default: none. */
  onEvent?: AuthEventListener;
  /** Throw `EMAIL_TAKEN` when registering a taken email. Default: false (answer as if it worked). */
  revealEmailTaken?: boolean;
  /** Refuse login with `EMAIL_NOT_VERIFIED` until the email is verified. Default: true. */
  requireVerifiedEmail?: boolean;
  /** Lifetime of an email-verification token, in ms. Default: 86_400_000 (24 h). */
  verificationTokenTtlMs?: number;
  /** Lifetime of a password-reset token, in ms. Default: 3_600_000 (1 h). */
  resetTokenTtlMs?: number;
  /** Least time between two verification or reset tokens for one address, in ms. Default: 60_000. */
  resendCooldownMs?: number;
}

/** Who is calling, for audit events and per-IP throttling. */
export interface RequestContext {
  ip?: string;
  userAgent?: string;
}

/** What `register` returns. */
export interface RegisterResult {
  userId: string;
  /** Send it to the address: it proves ownership through `verifyEmail`. */
  verificationToken: string;
  /**
   * True when the email was already registered and `revealEmailTaken` is false: `userId` and
   * `verificationToken` are then decoys that work nowhere. Answer the caller exactly as on success,
   * and tell the owner of the address by email instead of sending the token.
   */
  alreadyRegistered: boolean;
}

/** A fresh access token and refresh token. */
export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  /** Epoch ms. */
  accessExpiresAt: number;
  /** Epoch ms: the idle expiry, capped by the absolute one. */
  refreshExpiresAt: number;
  sessionId: string;
  userId: string;
}

/** A live session as the user may see it. */
export interface SessionInfo {
  id: string;
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms. */
  lastUsedAt: number;
  /** Epoch ms. */
  expiresAt: number;
  ip?: string;
  userAgent?: string;
}

/** Options of `verifyAccessToken`. */
export interface VerifyAccessTokenOptions {
  /** Also confirm the token's session is alive (one store read), so logouts take effect at once. Default: false. */
  checkSession?: boolean;
}

/** What `changePassword` needs. */
export interface ChangePasswordInput {
  userId: string;
  currentPassword: string;
  newPassword: string;
  /** The session to keep (the caller's own); every other session is revoked. Default: none kept. */
  keepSessionId?: string;
}

/** The failure counters an attempt is throttled by. */
interface ThrottleKeys {
  account: string;
  ip: string | undefined;
}

/** What `#reserveAttempt` counted before hashing. */
interface Reservation {
  /** The account's counter, this attempt included. */
  account: FailureRecord;
  /** The attempt's reservation on its IP's counter, settled after hashing; none without an IP or store support. */
  ip: AttemptReservation | undefined;
}

/** An attempt unsettled this long is taken as lost with its process (it stays counted), in ms. */
const ATTEMPT_ABANDON_MS = 60_000;

const REFRESH_TOKEN = /^([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/;
const ONE_TIME_TOKEN = /^([0-9a-f-]{36})\.([A-Za-z0-9_-]{43})$/;
const MAX_TOKEN_LENGTH = 256;

const SESSION_DEFAULTS: Required<SessionOptions> = {
  idleTimeoutMs: 14 * 86_400_000,
  absoluteTimeoutMs: 30 * 86_400_000,
  reuseGraceMs: 10_000,
};

const LOCKOUT_DEFAULTS: Required<LockoutOptions> = {
  freeAttempts: 3,
  baseDelayMs: 1_000,
  maxDelayMs: 60_000,
  lockAfter: 10,
  lockMs: 900_000,
  windowMs: 3_600_000,
  ipFreeAttempts: 20,
  ipLockAfter: 100,
};

/**
 * Registration, login, rotating refresh tokens with reuse detection, access-token verification,
 * sessions, password change and reset, and email verification, over any `AuthStore`.
 */
export class AuthService {
  readonly #store: AuthStore;
  readonly #hasher: Hasher;
  readonly #tokens: AccessTokens;
  readonly #sessions: Required<SessionOptions>;
  readonly #lockout: Required<LockoutOptions>;
  readonly #policy: PasswordPolicy;
  readonly #clock: Clock;
  readonly #onEvent: AuthEventListener | undefined;
  readonly #revealEmailTaken: boolean;
  readonly #requireVerifiedEmail: boolean;
  readonly #verificationTtlMs: number;
  readonly #resetTtlMs: number;
  readonly #cooldownMs: number;
  readonly #dummyHash: Promise<string>;

  /** Validates options and starts computing the decoy hash unknown users are checked against. */
  constructor(options: AuthServiceOptions) {
    this.#store = options.store;
    this.#hasher = options.hasher ?? new Argon2Hasher();
    this.#tokens = new AccessTokens(options.tokens);
    this.#sessions = { ...SESSION_DEFAULTS, ...definedOnly(options.sessions) };
    this.#lockout = { ...LOCKOUT_DEFAULTS, ...definedOnly(options.lockout) };
    this.#policy = passwordPolicy(options.passwordPolicy);
    this.#clock = options.clock ?? { now: () => Date.now() };
    this.#onEvent = options.onEvent;
    this.#revealEmailTaken = options.revealEmailTaken ?? false;
    this.#requireVerifiedEmail = options.requireVerifiedEmail ?? true;
    this.#verificationTtlMs = options.verificationTokenTtlMs ?? 86_400_000;
    this.#resetTtlMs = options.resetTokenTtlMs ?? 3_600_000;
    this.#cooldownMs = options.resendCooldownMs ?? 60_000;
    const { idleTimeoutMs, absoluteTimeoutMs, reuseGraceMs } = this.#sessions;
    positive('sessions.idleTimeoutMs', idleTimeoutMs);
    positive('sessions.absoluteTimeoutMs', absoluteTimeoutMs);
    if (!Number.isInteger(reuseGraceMs) || reuseGraceMs < 0 || reuseGraceMs > 60_000) {
      throw new AuthError(
        'INVALID_OPTIONS',
        'sessions.reuseGraceMs must be an integer between 0 and 60000',
      );
    }
    for (const [name, value] of Object.entries(this.#lockout)) positive(`lockout.${name}`, value);
    if (this.#lockout.lockAfter <= this.#lockout.freeAttempts) {
      throw new AuthError(
        'INVALID_OPTIONS',
        'lockout.lockAfter must be greater than lockout.freeAttempts',
      );
    }
    if (this.#lockout.windowMs < this.#lockout.lockMs)
      throw new AuthError('INVALID_OPTIONS', 'lockout.windowMs must be >= lockout.lockMs');
    positive('verificationTokenTtlMs', this.#verificationTtlMs);
    positive('resetTokenTtlMs', this.#resetTtlMs);
    if (!Number.isInteger(this.#cooldownMs) || this.#cooldownMs < 0)
      throw new AuthError('INVALID_OPTIONS', 'resendCooldownMs must be an integer >= 0');
    // Unknown users are verified against this, so they cost exactly what a wrong password costs.
    this.#dummyHash = this.#hasher.hash(randomToken(24));
    this.#dummyHash.catch(() => undefined);
  }

  /** Creates an account and its first email-verification token; see `RegisterResult`. */
  async register(
    input: { email: string; password: string },
    context: RequestContext = {},
  ): Promise<RegisterResult> {
    const email = normalizeEmail(input.email);
    requireString(input.password, 'password');
    const reasons = checkPassword(this.#policy, input.password, email);
    if (reasons.length > 0)
      throw new AuthError('WEAK_PASSWORD', `password refused: ${reasons.join(', ')}`, {
        reasons,
        field: 'password',
      });
    const now = this.#clock.now();
    const passwordHash = await this.#hasher.hash(input.password);
    const userId = randomUUID();
    const created = await this.#store.createUser({
      id: userId,
      email,
      passwordHash,
      emailVerified: false,
      createdAt: now,
    });
    if (!created) {
      if (this.#revealEmailTaken)
        throw new AuthError('EMAIL_TAKEN', 'email address is already registered', {
          field: 'email',
        });
      const existing = await this.#store.getUserByEmail(email);
      this.#emit({
        type: 'registration_duplicate',
        at: now,
        ...(existing === null ? {} : { userId: existing.id }),
        ...clean(context),
      });
      return {
        userId: randomUUID(),
        verificationToken: `${randomUUID()}.${randomToken(32)}`,
        alreadyRegistered: true,
      };
    }
    await this.#store.acquireCooldown(`verify:${sha256(email)}`, now, this.#cooldownMs);
    const verificationToken = await this.#issueOneTime(
      'verify-email',
      userId,
      now + this.#verificationTtlMs,
    );
    this.#emit({ type: 'registered', at: now, userId, ...clean(context) });
    return { userId, verificationToken, alreadyRegistered: false };
  }

  /**
   * Checks a password and opens a session. Unknown email, wrong password: the same hashing work
   * and the same `INVALID_CREDENTIALS`. Too many failures: `ACCOUNT_LOCKED` with `retryAfterMs`,
   * whether or not the account exists.
   */
  async login(input: { email: string; password: string } & RequestContext): Promise<TokenPair> {
    const email = normalizeEmail(input.email);
    const context = clean(input);
    if (typeof input.password !== 'string' || isOversized(input.password, this.#policy.maxBytes)) {
      throw new AuthError('INVALID_INPUT', 'password is too long', { field: 'password' });
    }
    const now = this.#clock.now();
    const keys = this.#throttleKeys(email, context);
    const attempt = await this.#reserveAttempt(keys, now, context);
    const user = await this.#store.getUserByEmail(email);
    const hash = user?.passwordHash ?? (await this.#dummyHash);
    const matches = await this.#hasher.verify(hash, input.password);
    if (user === null || !matches) {
      await this.#fail(
        keys,
        attempt,
        now,
        user?.id,
        user === null ? 'unknown_user' : 'wrong_password',
        context,
      );
      throw new AuthError('INVALID_CREDENTIALS', 'email or password is incorrect');
    }
    // The attempt was counted before hashing; the right password takes it back.
    await this.#release(keys, attempt);
    if (this.#requireVerifiedEmail && !user.emailVerified) {
      throw new AuthError('EMAIL_NOT_VERIFIED', 'email address is not verified yet');
    }
    // The hash known to belong to this password; a concurrent change must never be overwritten.
    let knownHash = user.passwordHash;
    if (this.#hasher.needsRehash(user.passwordHash)) {
      const rehashed = await this.#hasher.hash(input.password);
      const updated = await this.#store.updateUser(user.id, {
        passwordHash: rehashed,
        ifPasswordHash: user.passwordHash,
      });
      if (updated) {
        knownHash = rehashed;
        this.#emit({ type: 'password_rehashed', at: now, userId: user.id });
      }
    }
    const pair = await this.#openSession(user.id, now, context);
    // A password change, reset or deletion that finished while this login was hashing revoked
    // sessions before this one existed: look again, and drop the session if the password is stale.
    const current = await this.#store.getUserById(user.id);
    if (
      current === null ||
      (current.passwordHash !== knownHash &&
        !(await this.#hasher.verify(current.passwordHash, input.password)))
    ) {
      await this.#store.deleteSession(user.id, pair.sessionId);
      throw new AuthError('INVALID_CREDENTIALS', 'email or password is incorrect');
    }
    this.#emit({
      type: 'login_succeeded',
      at: now,
      userId: user.id,
      sessionId: pair.sessionId,
      ...context,
    });
    return pair;
  }

  /**
   * Spends a refresh token and returns a new pair. A spent token presented again revokes the
   * whole session (`TOKEN_REUSED`), except the immediate parent inside the grace window, which
   * gets the successor already issued.
   */
  async refresh(refreshToken: string, context: RequestContext = {}): Promise<TokenPair> {
    const { sessionId, secret } = parseRefreshToken(refreshToken);
    const now = this.#clock.now();
    const nextToken = `${sessionId}.${randomToken(32)}`;
    const result = await this.#store.rotateRefreshToken({
      sessionId,
      presentedHash: sha256(secret),
      nextHash: sha256(nextToken.slice(sessionId.length + 1)),
      nextSealed: seal(secret, nextToken),
      now,
      graceMs: this.#sessions.reuseGraceMs,
      idleExpiresAt: now + this.#sessions.idleTimeoutMs,
    });
    const extra = clean(context);
    switch (result.status) {
      case 'rotated': {
        this.#emit({
          type: 'token_refreshed',
          at: now,
          userId: result.session.userId,
          sessionId,
          ...extra,
        });
        return this.#pair(result.session, nextToken, now);
      }
      case 'grace': {
        const successor = unseal(secret, result.successorSealed);
        if (successor === null)
          throw new AuthError('TOKEN_INVALID', 'refresh token is invalid', { field: 'refresh' });
        this.#emit({
          type: 'token_refreshed',
          at: now,
          userId: result.session.userId,
          sessionId,
          reason: 'grace',
          ...extra,
        });
        return this.#pair(result.session, successor, now);
      }
      case 'reused': {
        this.#emit({ type: 'token_reuse', at: now, userId: result.userId, sessionId, ...extra });
        this.#emit({
          type: 'session_revoked',
          at: now,
          userId: result.userId,
          sessionId,
          reason: 'reuse',
          ...extra,
        });
        throw new AuthError(
          'TOKEN_REUSED',
          'refresh token was already used; the session is revoked',
        );
      }
      default:
        // Unknown, forged, or an expired session: one answer whatever the store still holds.
        throw new AuthError('TOKEN_INVALID', 'refresh token is invalid', { field: 'refresh' });
    }
  }

  /**
   * Verifies an access token's signature, `kid`, `alg`, issuer, audience and expiry. With
   * `checkSession: true` also confirms its session is alive (one store read), so logout,
   * `logoutAll`, a password change or detected reuse rejects it at once.
   */
  async verifyAccessToken(
    token: string,
    options: VerifyAccessTokenOptions = {},
  ): Promise<AccessTokenClaims> {
    const now = this.#clock.now();
    const claims = await this.#tokens.verify(token, now);
    if (options.checkSession === true) {
      const session = await this.#store.getSession(claims.sid);
      if (session?.userId !== claims.sub || isDead(session, now)) {
        throw new AuthError('TOKEN_INVALID', 'session is no longer active', { field: 'session' });
      }
    }
    return claims;
  }

  /** Ends the session a refresh token (live, or its parent) belongs to; resolves false if there was none. Never throws for a bad token. */
  async logout(refreshToken: string, context: RequestContext = {}): Promise<boolean> {
    let parsed: { sessionId: string; secret: string };
    try {
      parsed = parseRefreshToken(refreshToken);
    } catch {
      return false;
    }
    const session = await this.#store.getSession(parsed.sessionId);
    if (session === null) return false;
    const hash = sha256(parsed.secret);
    const owns =
      safeEqual(hash, session.tokenHash) ||
      (session.parentHash !== undefined && safeEqual(hash, session.parentHash));
    if (!owns) return false;
    const now = this.#clock.now();
    const deleted = await this.#store.deleteSession(session.userId, session.id, now);
    // A dead session is no session, also for a custom store that ignores `now`.
    if (isDead(session, now)) return false;
    if (deleted)
      this.#emit({
        type: 'session_revoked',
        at: now,
        userId: session.userId,
        sessionId: session.id,
        reason: 'logout',
        ...clean(context),
      });
    return deleted;
  }

  /** Ends every session of a user; resolves how many were alive (dead ones go too, uncounted). */
  async logoutAll(userId: string): Promise<number> {
    const now = this.#clock.now();
    const count = await this.#store.deleteUserSessions(userId, undefined, now);
    this.#emit({
      type: 'sessions_revoked',
      at: now,
      userId,
      reason: 'logout_all',
      count,
    });
    return count;
  }

  /** The user's live sessions, oldest first, without any token material. */
  async listSessions(userId: string): Promise<SessionInfo[]> {
    const sessions = await this.#store.listSessions(userId, this.#clock.now());
    return sessions.map((session) => ({
      id: session.id,
      createdAt: session.createdAt,
      lastUsedAt: session.lastUsedAt,
      expiresAt: Math.min(session.idleExpiresAt, session.absoluteExpiresAt),
      ...(session.ip === undefined ? {} : { ip: session.ip }),
      ...(session.userAgent === undefined ? {} : { userAgent: session.userAgent }),
    }));
  }

  /** Ends one session of a user (e.g. "sign out that device"); resolves false if it was not theirs or not alive. */
  async revokeSession(userId: string, sessionId: string): Promise<boolean> {
    const session = await this.#store.getSession(sessionId);
    const now = this.#clock.now();
    const deleted = await this.#store.deleteSession(userId, sessionId, now);
    // A dead session is no session, whether the store still holds it or has already evicted it.
    if (!deleted || session === null || isDead(session, now)) return false;
    this.#emit({ type: 'session_revoked', at: now, userId, sessionId, reason: 'revoked' });
    return true;
  }

  /** Changes a password after checking the current one (throttled like login); revokes every other session and any reset token. */
  async changePassword(input: ChangePasswordInput, context: RequestContext = {}): Promise<void> {
    requireString(input.currentPassword, 'currentPassword');
    requireString(input.newPassword, 'newPassword');
    if (isOversized(input.currentPassword, this.#policy.maxBytes))
      throw new AuthError('INVALID_INPUT', 'password is too long', { field: 'currentPassword' });
    const user = await this.#store.getUserById(input.userId);
    const requestContext = clean(context);
    const now = this.#clock.now();
    // A stolen access token must not become an unthrottled password oracle: same counters as login.
    const keys = user === null ? undefined : this.#throttleKeys(user.email, requestContext);
    const attempt =
      keys === undefined ? undefined : await this.#reserveAttempt(keys, now, requestContext);
    const matches = await this.#hasher.verify(
      user?.passwordHash ?? (await this.#dummyHash),
      input.currentPassword,
    );
    if (user === null || keys === undefined || attempt === undefined || !matches) {
      if (keys !== undefined && attempt !== undefined)
        await this.#fail(keys, attempt, now, user?.id, 'wrong_password', requestContext);
      throw new AuthError('INVALID_CREDENTIALS', 'current password is incorrect');
    }
    await this.#release(keys, attempt);
    await this.#setPassword(
      user.id,
      user.email,
      input.newPassword,
      input.keepSessionId,
      'password_changed',
      context,
    );
  }

  /** Sets a password without the current one (administrators); revokes every session. Throws `INVALID_INPUT` for an unknown user. */
  async setPassword(userId: string, newPassword: string): Promise<void> {
    const user = await this.#store.getUserById(userId);
    if (user === null) throw new AuthError('INVALID_INPUT', 'no such user', { field: 'userId' });
    await this.#setPassword(user.id, user.email, newPassword, undefined, 'password_changed', {});
  }

  /** Spends an email-verification token and marks the address verified. */
  async verifyEmail(token: string): Promise<{ userId: string }> {
    const { userId, secret } = parseOneTimeToken(token);
    await this.#consume('verify-email', userId, secret);
    const updated = await this.#store.updateUser(userId, { emailVerified: true });
    if (!updated)
      throw new AuthError('TOKEN_INVALID', 'verification token is invalid', {
        field: 'verify-email',
      });
    this.#emit({ type: 'email_verified', at: this.#clock.now(), userId });
    return { userId };
  }

  /**
   * A new verification token for an unverified account (older ones stop working), or null when
   * there is no such account, it is verified, or the per-address cooldown runs. Answer the caller
   * the same way in every case.
   */
  async resendVerification(
    email: string,
    context: RequestContext = {},
  ): Promise<{ userId: string; token: string } | null> {
    const normalized = normalizeEmail(email);
    const now = this.#clock.now();
    if (!(await this.#store.acquireCooldown(`verify:${sha256(normalized)}`, now, this.#cooldownMs)))
      return null;
    const user = await this.#store.getUserByEmail(normalized);
    if (user === null || user.emailVerified) return null;
    const token = await this.#issueOneTime('verify-email', user.id, now + this.#verificationTtlMs);
    this.#emit({ type: 'verification_requested', at: now, userId: user.id, ...clean(context) });
    return { userId: user.id, token };
  }

  /**
   * A password-reset token for the account (older ones stop working), or null when there is no
   * such account or the per-address cooldown runs. Answer the caller the same way in every case.
   */
  async requestPasswordReset(
    email: string,
    context: RequestContext = {},
  ): Promise<{ userId: string; token: string } | null> {
    const normalized = normalizeEmail(email);
    const now = this.#clock.now();
    if (!(await this.#store.acquireCooldown(`reset:${sha256(normalized)}`, now, this.#cooldownMs)))
      return null;
    const user = await this.#store.getUserByEmail(normalized);
    if (user === null) return null;
    const token = await this.#issueOneTime('reset-password', user.id, now + this.#resetTtlMs);
    this.#emit({ type: 'password_reset_requested', at: now, userId: user.id, ...clean(context) });
    return { userId: user.id, token };
  }

  /** Spends a reset token and sets the new password; revokes every session and clears the lockout. */
  async resetPassword(
    token: string,
    newPassword: string,
    context: RequestContext = {},
  ): Promise<void> {
    const { userId, secret } = parseOneTimeToken(token);
    const user = await this.#store.getUserById(userId);
    if (user === null)
      throw new AuthError('TOKEN_INVALID', 'reset token is invalid', { field: 'reset-password' });
    this.#checkNewPassword(newPassword, user.email);
    const passwordHash = await this.#hasher.hash(newPassword);
    await this.#consume('reset-password', userId, secret);
    await this.#store.updateUser(userId, { passwordHash });
    // Reading the reset email proves ownership of the address too.
    if (!user.emailVerified) await this.#store.updateUser(userId, { emailVerified: true });
    await this.#store.clearFailures(`account:${sha256(user.email)}`);
    const now = this.#clock.now();
    const count = await this.#store.deleteUserSessions(userId, undefined, now);
    this.#emit({ type: 'password_reset', at: now, userId, ...clean(context) });
    this.#emit({ type: 'sessions_revoked', at: now, userId, reason: 'password_reset', count });
  }

  /** Deletes a user with every session and pending token; outstanding refresh tokens stop working at once. */
  async deleteUser(userId: string): Promise<boolean> {
    const deleted = await this.#store.deleteUser(userId);
    if (deleted) this.#emit({ type: 'user_deleted', at: this.#clock.now(), userId });
    return deleted;
  }

  async #setPassword(
    userId: string,
    email: string,
    newPassword: string,
    keepSessionId: string | undefined,
    type: 'password_changed',
    context: RequestContext,
  ): Promise<void> {
    this.#checkNewPassword(newPassword, email);
    const passwordHash = await this.#hasher.hash(newPassword);
    await this.#store.updateUser(userId, { passwordHash });
    await this.#store.deleteOneTimeToken('reset-password', userId);
    const now = this.#clock.now();
    const count = await this.#store.deleteUserSessions(userId, keepSessionId, now);
    this.#emit({ type, at: now, userId, ...clean(context) });
    this.#emit({ type: 'sessions_revoked', at: now, userId, reason: type, count });
  }

  #checkNewPassword(password: string, email: string): void {
    requireString(password, 'password');
    const reasons = checkPassword(this.#policy, password, email);
    if (reasons.length > 0)
      throw new AuthError('WEAK_PASSWORD', `password refused: ${reasons.join(', ')}`, {
        reasons,
        field: 'password',
      });
  }

  async #issueOneTime(purpose: OneTimePurpose, userId: string, expiresAt: number): Promise<string> {
    const secret = randomToken(32);
    await this.#store.putOneTimeToken(purpose, userId, sha256(secret), expiresAt);
    return `${userId}.${secret}`;
  }

  async #consume(purpose: OneTimePurpose, userId: string, secret: string): Promise<void> {
    const result = await this.#store.consumeOneTimeToken(
      purpose,
      userId,
      sha256(secret),
      this.#clock.now(),
    );
    // An expired token is `invalid` (a deprecated custom store's `expired` too), so the answer
    // never depends on the store, nor on whether it has evicted the record yet.
    if (result !== 'ok')
      throw new AuthError('TOKEN_INVALID', `${purpose} token is invalid`, { field: purpose });
  }

  async #openSession(userId: string, now: number, context: RequestContext): Promise<TokenPair> {
    const sessionId = randomToken(16);
    const secret = randomToken(32);
    const absoluteExpiresAt = now + this.#sessions.absoluteTimeoutMs;
    await this.#store.createSession({
      id: sessionId,
      userId,
      tokenHash: sha256(secret),
      createdAt: now,
      idleExpiresAt: Math.min(now + this.#sessions.idleTimeoutMs, absoluteExpiresAt),
      absoluteExpiresAt,
      ...context,
    });
    const access = await this.#tokens.sign(userId, sessionId, now);
    return {
      accessToken: access.token,
      refreshToken: `${sessionId}.${secret}`,
      accessExpiresAt: access.expiresAt,
      refreshExpiresAt: Math.min(now + this.#sessions.idleTimeoutMs, absoluteExpiresAt),
      sessionId,
      userId,
    };
  }

  async #pair(session: SessionRecord, refreshToken: string, now: number): Promise<TokenPair> {
    const access = await this.#tokens.sign(session.userId, session.id, now);
    return {
      accessToken: access.token,
      refreshToken,
      accessExpiresAt: access.expiresAt,
      refreshExpiresAt: Math.min(session.idleExpiresAt, session.absoluteExpiresAt),
      sessionId: session.id,
      userId: session.userId,
    };
  }

  #throttleKeys(email: string, context: RequestContext): ThrottleKeys {
    return {
      account: `account:${sha256(email)}`,
      ip: context.ip === undefined ? undefined : `ip:${context.ip}`,
    };
  }

  /** Throws `ACCOUNT_LOCKED` while the account's or the IP's delay or lock runs; returns both counters read. */
  async #throttle(
    keys: ThrottleKeys,
    now: number,
    context: RequestContext,
  ): Promise<{ account: FailureRecord | null; ip: FailureRecord | null }> {
    const { windowMs } = this.#lockout;
    const [account, ip] = await Promise.all([
      this.#store.getFailures(keys.account, now, windowMs),
      keys.ip === undefined
        ? Promise.resolve(null)
        : this.#store.getFailures(keys.ip, now, windowMs),
    ]);
    const blockedUntil = Math.max(
      this.#blockedUntil(account, 'account'),
      this.#blockedUntil(ip, 'ip'),
    );
    if (blockedUntil > now) {
      this.#emit({ type: 'login_blocked', at: now, ...context });
      throw new AuthError('ACCOUNT_LOCKED', 'too many failed attempts; try again later', {
        retryAfterMs: blockedUntil - now,
      });
    }
    return { account, ip };
  }

  /**
   * Checks the throttle, then counts this attempt on its IP and on the account before any hashing,
   * so concurrent guesses cannot all pass one check. The IP goes first and is decided on the
   * store's atomic answer alone (`#reserveIp`). On the account, past the free attempts, an attempt
   * whose count is not the one right after the count it checked lost a race and waits. The right
   * password takes both back (`#release`).
   */
  async #reserveAttempt(
    keys: ThrottleKeys,
    now: number,
    context: RequestContext,
  ): Promise<Reservation> {
    const observed = await this.#throttle(keys, now, context);
    // The IP first: an attempt its limit refuses is then never charged to the account it aimed at.
    const ip = await this.#reserveIp(keys, now, context);
    try {
      const account = await this.#store.recordFailure(keys.account, now, this.#lockout.windowMs);
      const free = this.#lockout.freeAttempts;
      if (account.count > free && account.count !== (observed.account?.count ?? 0) + 1)
        this.#refuse(Math.max(1, this.#blockedUntil(account, 'account') - now), now, context);
      return { account, ip };
    } catch (error) {
      // Nothing was verified: the IP's reservation is given back.
      if (ip !== undefined && keys.ip !== undefined)
        await this.#store.settleAttempt?.(keys.ip, ip, false);
      throw error;
    }
  }

  /**
   * Counts the attempt on its IP (`reserveAttempt`, one atomic step) and decides on what that step
   * saw: within the free attempts it goes on; past them, only when no other attempt from the IP is
   * in flight and the delay since its latest failure has run, so one guess per delay is verified
   * however many arrive at once. A refused attempt is given back at once. Undefined when there is
   * no IP, or the store cannot reserve (then the IP is counted after hashing, on failure only).
   */
  async #reserveIp(
    keys: ThrottleKeys,
    now: number,
    context: RequestContext,
  ): Promise<AttemptReservation | undefined> {
    const store = this.#store;
    if (
      keys.ip === undefined ||
      store.reserveAttempt === undefined ||
      store.settleAttempt === undefined
    )
      return undefined;
    const reservation: AttemptReservation = {
      id: randomToken(12),
      now,
      windowMs: this.#lockout.windowMs,
      abandonAfterMs: ATTEMPT_ABANDON_MS,
    };
    const seen = await store.reserveAttempt(keys.ip, reservation);
    const before = { count: seen.count - 1, lastFailureAt: seen.lastFailureAt };
    if (before.count < this.#lockout.ipFreeAttempts) return reservation;
    const blockedUntil = this.#blockedUntil(before, 'ip');
    if (seen.inFlight === 0 && blockedUntil <= now) return reservation;
    await store.settleAttempt(keys.ip, reservation, false);
    this.#refuse(Math.max(1, blockedUntil - now), now, context);
  }

  #refuse(retryAfterMs: number, now: number, context: RequestContext): never {
    this.#emit({ type: 'login_blocked', at: now, ...context });
    throw new AuthError('ACCOUNT_LOCKED', 'too many failed attempts; try again later', {
      retryAfterMs,
    });
  }

  /** The password was right: clears the account's counter and gives back the IP's reservation. */
  async #release(keys: ThrottleKeys, reservation: Reservation): Promise<void> {
    await Promise.all([
      this.#store.clearFailures(keys.account),
      reservation.ip !== undefined && keys.ip !== undefined
        ? this.#store.settleAttempt?.(keys.ip, reservation.ip, false)
        : undefined,
    ]);
  }

  /** Records a failed attempt: `#reserveAttempt` counted it; the IP's failure is settled (or, without reservations, counted) now. */
  async #fail(
    keys: ThrottleKeys,
    reservation: Reservation,
    now: number,
    userId: string | undefined,
    reason: string,
    context: RequestContext,
  ): Promise<void> {
    if (keys.ip !== undefined) {
      if (reservation.ip === undefined)
        await this.#store.recordFailure(keys.ip, now, this.#lockout.windowMs);
      else await this.#store.settleAttempt?.(keys.ip, reservation.ip, true);
    }
    const { account } = reservation;
    const who = userId === undefined ? {} : { userId };
    this.#emit({ type: 'login_failed', at: now, ...who, reason, count: account.count, ...context });
    if (account.count === this.#lockout.lockAfter)
      this.#emit({ type: 'account_locked', at: now, ...who, count: account.count, ...context });
  }

  #blockedUntil(record: FailureRecord | null, scope: 'account' | 'ip'): number {
    if (record === null) return 0;
    const settings = this.#lockout;
    const free = scope === 'account' ? settings.freeAttempts : settings.ipFreeAttempts;
    const lockAfter = scope === 'account' ? settings.lockAfter : settings.ipLockAfter;
    if (record.count >= lockAfter) return record.lastFailureAt + settings.lockMs;
    if (record.count >= free)
      return (
        record.lastFailureAt +
        Math.min(settings.baseDelayMs * 2 ** (record.count - free), settings.maxDelayMs)
      );
    return 0;
  }

  #emit(event: AuthEvent): void {
    if (this.#onEvent === undefined) return;
    try {
      this.#onEvent(event);
    } catch {
      // Auditing must never break authentication.
    }
  }
}

function parseRefreshToken(token: unknown): { sessionId: string; secret: string } {
  const match =
    typeof token === 'string' && token.length <= MAX_TOKEN_LENGTH
      ? REFRESH_TOKEN.exec(token)
      : null;
  if (match === null)
    throw new AuthError('TOKEN_INVALID', 'refresh token is malformed', { field: 'format' });
  return { sessionId: match[1]!, secret: match[2]! };
}

function parseOneTimeToken(token: unknown): { userId: string; secret: string } {
  const match =
    typeof token === 'string' && token.length <= MAX_TOKEN_LENGTH
      ? ONE_TIME_TOKEN.exec(token)
      : null;
  if (match === null)
    throw new AuthError('TOKEN_INVALID', 'token is malformed', { field: 'format' });
  return { userId: match[1]!, secret: match[2]! };
}

function isDead(session: SessionRecord, now: number): boolean {
  return now >= session.idleExpiresAt || now >= session.absoluteExpiresAt;
}

function requireString(value: unknown, field: string): asserts value is string {
  // Request bodies are JSON: a number, object or null must be refused, not crash a string method.
  if (typeof value !== 'string')
    throw new AuthError('INVALID_INPUT', `${field} must be a string`, { field });
}

function clean(context: RequestContext | null | undefined): RequestContext {
  if (typeof context !== 'object' || context === null) return {};
  // Bounded so a hostile header cannot bloat the store or the audit log.
  return {
    ...(typeof context.ip === 'string' && context.ip.length > 0
      ? { ip: context.ip.slice(0, 64) }
      : {}),
    ...(typeof context.userAgent === 'string' && context.userAgent.length > 0
      ? { userAgent: context.userAgent.slice(0, 512) }
      : {}),
  };
}

function definedOnly<T extends object>(value: T | undefined): Partial<T> {
  if (value === undefined) return {};
  return Object.fromEntries(
    Object.entries(value).filter(([, entry]) => entry !== undefined),
  ) as Partial<T>;
}

function positive(name: string, value: number): void {
  if (!Number.isInteger(value) || value <= 0)
    throw new AuthError('INVALID_OPTIONS', `${name} must be a positive integer`);
}
