const MARKER = Symbol.for('postern.error');
const PACKAGE_MARKER = Symbol.for('postern.smtp-forward.error');

/** Stable codes carried by every {@link SmtpForwardError}. */
export type SmtpForwardErrorCode =
  | 'INVALID_OPTIONS'
  | 'BIND_FAILED'
  | 'ALREADY_LISTENING'
  | 'SRS_INVALID'
  | 'SRS_FORGED'
  | 'SRS_EXPIRED'
  | 'DELIVERY_FAILED'
  | 'SPOOL_UNREADABLE'
  | 'ALREADY_SETTLED';

/** Fields that an {@link SmtpForwardError} may carry besides its message. */
export interface SmtpForwardErrorFields {
  /** The underlying error, if any. */
  cause?: unknown;
  /** The SMTP reply code this error maps to (e.g. 451, 550). */
  responseCode?: number;
  /** Whether retrying later may succeed (4xx, network failure). */
  temporary?: boolean;
  /** Delivery attempts made before giving up. */
  attempts?: number;
  /** How long the caller should wait before retrying, in ms. */
  retryAfterMs?: number;
}

/** The one error class of @postern/smtp-forward; switch on `code`, never on the message. */
export class SmtpForwardError extends Error {
  /** A stable string that identifies the kind of failure. */
  readonly code: SmtpForwardErrorCode;
  /** The SMTP reply code this error maps to, when it has one. */
  readonly responseCode: number | undefined;
  /** Whether retrying later may succeed. */
  readonly temporary: boolean;
  /** Delivery attempts made, when the error comes from delivery. */
  readonly attempts: number | undefined;
  /** How long to wait before retrying, in ms, when known. */
  readonly retryAfterMs: number | undefined;
  readonly [MARKER] = true;
  readonly [PACKAGE_MARKER] = true;

  constructor(code: SmtpForwardErrorCode, message: string, fields: SmtpForwardErrorFields = {}) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.name = 'SmtpForwardError';
    this.code = code;
    this.responseCode = fields.responseCode;
    this.temporary = fields.temporary ?? false;
    this.attempts = fields.attempts;
    this.retryAfterMs = fields.retryAfterMs;
  }

  /** True for any SmtpForwardError, even one thrown by a second copy of this package. */
  static isInstance(value: unknown): value is SmtpForwardError {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as Record<symbol, unknown>)[PACKAGE_MARKER] === true
    );
  }
}

/** True for an error from any @postern package (they all carry the shared marker). */
export function isPosternError(value: unknown): value is Error & { code: string } {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Record<symbol, unknown>)[MARKER] === true
  );
}
