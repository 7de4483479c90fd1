/** What happened; see `AuthEvent`. */
export type AuthEventType =
  | 'registered'
  | 'registration_duplicate'
  | 'login_succeeded'
  | 'login_failed'
  | 'login_blocked'
  | 'account_locked'
  | 'password_rehashed'
  | 'token_refreshed'
  | 'token_reuse'
  | 'session_revoked'
  | 'sessions_revoked'
  | 'password_changed'
  | 'password_reset_requested'
  | 'password_reset'
  | 'verification_requested'
  | 'email_verified'
  | 'user_deleted';

/**
 * An audit event. It never carries a password, token, hash or email address: `userId` (when
 * known), `sessionId`, the caller's `ip` and `userAgent`, and a short `reason`.
 */
export interface AuthEvent {
  type: AuthEventType;
  /** Epoch ms, from the service clock. */
  at: number;
  userId?: string;
  sessionId?: string;
  ip?: string;
  userAgent?: string;
  /** Why, for failures and revocations: `unknown_user`, `wrong_password`, `logout`, `reuse`, ... */
  reason?: string;
  /** For `login_failed`, `account_locked` and `sessions_revoked`: failures counted or sessions revoked. */
  count?: number;
}

/** Receives audit events. Exceptions it throws are swallowed: auditing never breaks a login. */
export type AuthEventListener = (event: AuthEvent) => void;
