const MARKER = Symbol.for('postern.error');
const PACKAGE = '@postern/sync-queue';

/** Every stable error code this package throws. */
export type SyncQueueErrorCode =
  | 'INVALID_PAYLOAD'
  | 'PAYLOAD_TOO_LARGE'
  | 'INVALID_KEY'
  | 'INVALID_OPTIONS'
  | 'QUEUE_CLOSED'
  | 'LEASE_LOST'
  | 'HANDLER_TIMEOUT'
  | 'PERMANENT_FAILURE'
  | 'JOB_NOT_FOUND';

/** Fields every SyncQueueError may carry. */
export interface SyncQueueErrorOptions {
  /** The underlying error, if any. */
  cause?: unknown;
  /** Job the error is about. */
  jobId?: string;
  /** Attempts made so far on that job. */
  attempts?: number;
  /** Suggested wait before retrying, in ms. */
  retryAfterMs?: number;
}

/** Base class of every error thrown by @postern/sync-queue; check with `SyncQueueError.isInstance(e)`. */
export class SyncQueueError extends Error {
  /** Stable machine-readable code. */
  readonly code: SyncQueueErrorCode;
  /** Job the error is about, when there is one. */
  readonly jobId: string | undefined;
  /** Attempts made so far on that job, when known. */
  readonly attempts: number | undefined;
  /** Suggested wait before retrying, in ms, when known. */
  readonly retryAfterMs: number | undefined;
  readonly [MARKER]: string = PACKAGE;

  constructor(code: SyncQueueErrorCode, message: string, options: SyncQueueErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SyncQueueError';
    this.code = code;
    this.jobId = options.jobId;
    this.attempts = options.attempts;
    this.retryAfterMs = options.retryAfterMs;
  }

  /** True for any SyncQueueError, even one from another copy of this package. */
  static isInstance(value: unknown): value is SyncQueueError {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as { [MARKER]?: unknown })[MARKER] === PACKAGE &&
      typeof (value as { code?: unknown }).code === 'string'
    );
  }
}

/** Throw from a handler to send the job straight to the dead letters, skipping retries. */
export class PermanentError extends SyncQueueError {
  constructor(message: string, options: SyncQueueErrorOptions = {}) {
    super('PERMANENT_FAILURE', message, options);
    this.name = 'PermanentError';
  }

  /** True for any PermanentError, even one from another copy of this package. */
  static override isInstance(value: unknown): value is PermanentError {
    return SyncQueueError.isInstance(value) && value.code === 'PERMANENT_FAILURE';
  }
}

/** Turns anything a handler threw into an Error without losing its message. */
export function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  if (typeof value === 'string') return new Error(value);
  try {
    return new Error(`Non-error thrown: ${JSON.stringify(value) ?? String(value)}`);
  } catch {
    return new Error(`Non-error thrown: ${String(value)}`);
  }
}
