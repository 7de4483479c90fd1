const MARKER: unique symbol = Symbol.for('postern.error') as never;
const PACKAGE = '@postern/rate-limit';

/** Stable codes of every error this package throws. */
export type RateLimitErrorCode =
  /** An option of `createRateLimiter`, `combine`, a backend or a helper is out of range. */
  | 'INVALID_OPTION'
  /** A key is empty, not a string, longer than the limit, or not well-formed UTF-16 (a lone surrogate). */
  | 'INVALID_KEY'
  /** A `cost` is not a positive finite number, or exceeds the burst so it could never pass. */
  | 'INVALID_COST'
  /** The backend did not answer within its timeout. */
  | 'BACKEND_TIMEOUT'
  /** The backend failed (connection lost, script error, wrong reply). */
  | 'BACKEND_ERROR'
  /** The backend failed recently and is not retried before its probe time (`onError: 'throw'`). */
  | 'BACKEND_UNAVAILABLE';

/** Fields an error may carry besides its code and message. */
export interface RateLimitErrorFields {
  /** The option or argument at fault (`'limit'`, `'cost'`, `'key'`...). */
  readonly option?: string;
  /** When a later call may succeed, in ms. */
  readonly retryAfterMs?: number;
  /** How long the backend call was allowed to run, in ms. */
  readonly timeoutMs?: number;
  /** The underlying error. */
  readonly cause?: unknown;
}

/**
 * The one error class of @postern/rate-limit. Check with `RateLimitError.isInstance(value)`,
 * which also recognises errors from another copy of the package, then switch on `code`.
 */
export class RateLimitError extends Error {
  /** Marks every Postern error, across duplicate copies of a package. */
  readonly [MARKER]: string = PACKAGE;
  /** A stable code to switch on; the message may change between versions. */
  readonly code: RateLimitErrorCode;
  /** The option or argument at fault, for `INVALID_*` codes. */
  readonly option: string | undefined;
  /** When a later call may succeed, in ms, when known. */
  readonly retryAfterMs: number | undefined;
  /** The timeout that elapsed, in ms, for `BACKEND_TIMEOUT`. */
  readonly timeoutMs: number | undefined;

  constructor(code: RateLimitErrorCode, message: string, fields: RateLimitErrorFields = {}) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.name = 'RateLimitError';
    this.code = code;
    this.option = fields.option;
    this.retryAfterMs = fields.retryAfterMs;
    this.timeoutMs = fields.timeoutMs;
  }

  /** True for a `RateLimitError` from any copy of this package. */
  static isInstance(value: unknown): value is RateLimitError {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as Record<symbol, unknown>)[MARKER] === PACKAGE &&
      typeof (value as { code?: unknown }).code === 'string'
    );
  }
}

/** Throws `INVALID_OPTION` unless `value` is a finite number > 0. */
export function assertPositive(value: unknown, option: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new RateLimitError(
      'INVALID_OPTION',
      `${option} must be a positive finite number, got ${String(value)}`,
      {
        option,
      },
    );
  }
}

/** `error` itself when it is an `Error`, else an `Error` describing it. */
export function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** A rejected promise, for the synchronous failures of functions that return promises. */
export function rejectWith(error: unknown): Promise<never> {
  return Promise.reject(toError(error));
}
