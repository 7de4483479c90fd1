/** Every stable error code @postern/auth throws. */
export type AuthErrorCode =
  | 'INVALID_CREDENTIALS'
  | 'ACCOUNT_LOCKED'
  | 'EMAIL_TAKEN'
  | 'WEAK_PASSWORD'
  | 'TOKEN_INVALID'
  | 'TOKEN_EXPIRED'
  | 'TOKEN_REUSED'
  | 'EMAIL_NOT_VERIFIED'
  | 'INVALID_INPUT'
  | 'INVALID_OPTIONS';

/** Why a password was refused; see `checkPassword`. */
export type PasswordProblem = 'too_short' | 'too_long' | 'common' | 'contains_email' | 'repetitive';

const MARKER = Symbol.for('postern.error');
const PACKAGE = '@postern/auth';

/** Options every `AuthError` accepts. */
export interface AuthErrorOptions {
  /** The error that caused this one, if any. */
  cause?: unknown;
  /** For `ACCOUNT_LOCKED`: time until another attempt is allowed, in ms. */
  retryAfterMs?: number;
  /** For `WEAK_PASSWORD`: every rule the password broke. */
  reasons?: readonly PasswordProblem[];
  /** For `INVALID_INPUT` and `TOKEN_INVALID`: which input or check failed (never its value). */
  field?: string;
}

/**
 * The one error class of @postern/auth. `code` is stable; messages never contain a password,
 * token or secret. `AuthError.isInstance()` also recognises errors from another copy of this package.
 */
export class AuthError extends Error {
  /** A stable, machine-readable code. */
  readonly code: AuthErrorCode;
  /** For `ACCOUNT_LOCKED`: time until another attempt is allowed, in ms. */
  readonly retryAfterMs: number | undefined;
  /** For `WEAK_PASSWORD`: every rule the password broke. */
  readonly reasons: readonly PasswordProblem[] | undefined;
  /** For `INVALID_INPUT` and `TOKEN_INVALID`: which input or check failed. */
  readonly field: string | undefined;
  /** Which package threw it, for errors seen across packages. */
  readonly package: string = PACKAGE;
  readonly [MARKER] = true as const;

  /** Creates an error with a stable code. */
  constructor(code: AuthErrorCode, message: string, options: AuthErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AuthError';
    this.code = code;
    this.retryAfterMs = options.retryAfterMs;
    this.reasons = options.reasons === undefined ? undefined : Object.freeze([...options.reasons]);
    this.field = options.field;
  }

  /** True for any AuthError, including one thrown by a duplicate copy of this package. */
  static isInstance(value: unknown): value is AuthError {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as Record<symbol, unknown>)[MARKER] === true &&
      (value as { package?: unknown }).package === PACKAGE &&
      typeof (value as { code?: unknown }).code === 'string'
    );
  }

  /** A JSON form without the stack: code, message and structured fields. */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      ...(this.retryAfterMs === undefined ? {} : { retryAfterMs: this.retryAfterMs }),
      ...(this.reasons === undefined ? {} : { reasons: this.reasons }),
      ...(this.field === undefined ? {} : { field: this.field }),
    };
  }
}
