const MARKER = Symbol.for('postern.error');
const PACKAGE = '@postern/reference-server';

/** Every stable error code the reference server answers with. */
export type ServerErrorCode =
  | 'VALIDATION_FAILED'
  | 'NOT_FOUND'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'CONFLICT'
  | 'ALIAS_TAKEN'
  | 'DOMAIN_TAKEN'
  | 'DOMAIN_NOT_VERIFIED'
  | 'RATE_LIMITED'
  | 'CSRF_FAILED'
  | 'UNAVAILABLE'
  | 'INTERNAL'
  // Passed through from @postern/auth unchanged, so clients see one vocabulary.
  | 'INVALID_CREDENTIALS'
  | 'ACCOUNT_LOCKED'
  | 'EMAIL_TAKEN'
  | 'WEAK_PASSWORD'
  | 'TOKEN_INVALID'
  | 'TOKEN_EXPIRED'
  | 'TOKEN_REUSED'
  | 'EMAIL_NOT_VERIFIED';

/** Options every `ServerError` takes besides its code and message. */
export interface ServerErrorOptions {
  /** HTTP status the API answers with. Default: 500. */
  status?: number;
  /** The field of the request that was wrong, for `VALIDATION_FAILED`. */
  field?: string;
  /** How long the client should wait before retrying, in ms (`RATE_LIMITED`). */
  retryAfterMs?: number;
  cause?: unknown;
}

/** The one base class of the reference server's errors: a stable `code`, an HTTP `status`, structured fields. */
export class ServerError extends Error {
  readonly [MARKER] = true;
  /** Which package threw it, for errors seen across packages. */
  readonly package = PACKAGE;
  readonly code: ServerErrorCode;
  readonly status: number;
  readonly field: string | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(code: ServerErrorCode, message: string, options: ServerErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ServerError';
    this.code = code;
    this.status = options.status ?? 500;
    this.field = options.field;
    this.retryAfterMs = options.retryAfterMs;
  }

  /** True for any `ServerError`, even one thrown by a second copy of this module. */
  static isInstance(value: unknown): value is ServerError {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as Record<symbol, unknown>)[MARKER] === true &&
      (value as { package?: unknown }).package === PACKAGE &&
      typeof (value as { code?: unknown }).code === 'string'
    );
  }
}
