// The public surface of @postern/auth: every export is named here.
export { AuthError } from './errors.js';
export type { AuthErrorCode, AuthErrorOptions, PasswordProblem } from './errors.js';
export { AuthService } from './service.js';
export type {
  AuthServiceOptions,
  ChangePasswordInput,
  Clock,
  LockoutOptions,
  RegisterResult,
  RequestContext,
  SessionInfo,
  SessionOptions,
  TokenPair,
  VerifyAccessTokenOptions,
} from './service.js';
export type { AuthEvent, AuthEventListener, AuthEventType } from './events.js';
export { Argon2Hasher, bcryptVerifier, nodeArgon2, scryptVerifier } from './hasher.js';
export type {
  Argon2Binding,
  Argon2HasherOptions,
  Argon2Parameters,
  Hasher,
  LegacyVerifier,
  Pepper,
} from './hasher.js';
export { AccessTokens } from './tokens.js';
export type { AccessTokenClaims, AccessTokenKey, AccessTokenOptions } from './tokens.js';
export { checkPassword, passwordPolicy } from './password-policy.js';
export type { PasswordPolicy, PasswordPolicyOptions } from './password-policy.js';
export { normalizeEmail } from './email.js';
export { MemoryAuthStore } from './memory-store.js';
export type {
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
