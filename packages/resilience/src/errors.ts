const POSTERN_ERROR: unique symbol = Symbol.for('postern.error');
const RESILIENCE_ERROR: unique symbol = Symbol.for('postern.resilience.error');

/** Every stable error code this package throws. */
export type ResilienceErrorCode =
  'BROKEN_CIRCUIT' | 'TIMEOUT' | 'BULKHEAD_REJECTED' | 'RETRY_EXHAUSTED' | 'INVALID_OPTION';

/** Structural view of any error from this package, whichever copy of the package threw it. */
export interface ResilienceErrorLike extends Error {
  readonly code: ResilienceErrorCode;
}

function hasCode(error: unknown, code?: ResilienceErrorCode): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const marked = error as { [RESILIENCE_ERROR]?: unknown; code?: unknown };
  if (marked[RESILIENCE_ERROR] !== true) return false;
  return code === undefined ? typeof marked.code === 'string' : marked.code === code;
}

/** Base class of every error thrown by @postern/resilience; `code` is stable across versions. */
export class ResilienceError extends Error {
  /** Marker shared by every Postern package's errors. */
  readonly [POSTERN_ERROR] = true as const;
  /** Marker of this package's errors; `isInstance` checks it, not the prototype chain. */
  readonly [RESILIENCE_ERROR] = true as const;
  readonly code: ResilienceErrorCode;

  constructor(code: ResilienceErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'ResilienceError';
  }

  /** True for any error of this package, even one thrown by a duplicate copy of it. */
  static isInstance(error: unknown): error is ResilienceErrorLike {
    return hasCode(error);
  }
}

/** The circuit is open, isolated, or its half-open probes are all taken. */
export class BrokenCircuitError extends ResilienceError {
  /** How long until the breaker lets a call through again, in ms (Infinity while isolated). */
  readonly retryAfterMs: number;
  /** True when the circuit is held open by `isolate()`. */
  readonly isolated: boolean;

  constructor(retryAfterMs: number, isolated = false) {
    super(
      'BROKEN_CIRCUIT',
      isolated
        ? 'Circuit is isolated: calls are rejected until the isolation is released'
        : `Circuit is open: calls are rejected for another ${Math.ceil(retryAfterMs)}ms`,
    );
    this.name = 'BrokenCircuitError';
    this.retryAfterMs = retryAfterMs;
    this.isolated = isolated;
  }

  /** True for a BrokenCircuitError from any copy of this package. */
  static override isInstance(error: unknown): error is BrokenCircuitError {
    return hasCode(error, 'BROKEN_CIRCUIT');
  }
}

/** The call ran longer than the timeout allowed. */
export class TimeoutError extends ResilienceError {
  /** The limit that was exceeded, in ms. */
  readonly timeoutMs: number;

  constructor(timeoutMs: number, options?: { cause?: unknown }) {
    super('TIMEOUT', `Operation timed out after ${timeoutMs}ms`, options);
    this.name = 'TimeoutError';
    this.timeoutMs = timeoutMs;
  }

  /** True for a TimeoutError from any copy of this package. */
  static override isInstance(error: unknown): error is TimeoutError {
    return hasCode(error, 'TIMEOUT');
  }
}

/** Why a bulkhead refused a call. */
export type BulkheadRejectReason = 'full' | 'queue-timeout' | 'disposed';

const BULKHEAD_REASONS: Record<BulkheadRejectReason, string> = {
  full: 'Bulkhead is full',
  'queue-timeout': 'Bulkhead queue wait timed out',
  disposed: 'Bulkhead is disposed',
};

/** The bulkhead had no free slot and its queue was full (or the queue wait timed out). */
export class BulkheadRejectedError extends ResilienceError {
  /** Calls running when this call was rejected. */
  readonly active: number;
  /** Calls waiting in the queue when this call was rejected. */
  readonly queued: number;
  /** A hint for retry; the bulkhead cannot predict when a slot frees, so this is 0. */
  readonly retryAfterMs: number = 0;
  /** Why: every slot and queue place taken, the queue wait timed out, or the bulkhead was disposed. */
  readonly reason: BulkheadRejectReason;

  constructor(active: number, queued: number, reason: BulkheadRejectReason = 'full') {
    super('BULKHEAD_REJECTED', `${BULKHEAD_REASONS[reason]} (${active} running, ${queued} queued)`);
    this.name = 'BulkheadRejectedError';
    this.active = active;
    this.queued = queued;
    this.reason = reason;
  }

  /** True for a BulkheadRejectedError from any copy of this package. */
  static override isInstance(error: unknown): error is BulkheadRejectedError {
    return hasCode(error, 'BULKHEAD_REJECTED');
  }
}

/**
 * Why a retry loop stopped: `'attempts'` ran out, the `'budget'` was spent, a `'retry-after'` hint
 * exceeded `maxDelayMs`, or the policy was `'disposed'` while the call waited for its next attempt.
 */
export type RetryStopReason = 'attempts' | 'budget' | 'retry-after' | 'disposed';

/**
 * Retry gave up: attempts ran out, the retry budget was spent, a retry-after hint exceeded
 * `maxDelayMs`, or the policy was disposed while the call waited (`reason` says which).
 */
export class RetryExhaustedError extends ResilienceError {
  /** Attempts made, including the first. */
  readonly attempts: number;
  /** The error of the last attempt (also `cause`); undefined when disposal ended a wait after a value `retryOnResult` accepted. */
  readonly lastError: unknown;
  /** Why no further attempt was made. */
  readonly reason: RetryStopReason;

  constructor(attempts: number, lastError: unknown, reason: RetryStopReason) {
    super('RETRY_EXHAUSTED', `Gave up after ${attempts} attempt(s) (${reason})`, {
      cause: lastError,
    });
    this.name = 'RetryExhaustedError';
    this.attempts = attempts;
    this.lastError = lastError;
    this.reason = reason;
  }

  /** True for a RetryExhaustedError from any copy of this package. */
  static override isInstance(error: unknown): error is RetryExhaustedError {
    return hasCode(error, 'RETRY_EXHAUSTED');
  }
}

/** An option passed to a policy factory is invalid; thrown at construction, never at call time. */
export class InvalidOptionError extends TypeError {
  readonly [POSTERN_ERROR] = true as const;
  readonly [RESILIENCE_ERROR] = true as const;
  readonly code = 'INVALID_OPTION' as const;
  /** The option's name, e.g. `strategy.minimumCalls`. */
  readonly option: string;

  constructor(option: string, requirement: string, value: unknown) {
    super(`Invalid option "${option}": ${requirement} (got ${describe(value)})`);
    this.name = 'InvalidOptionError';
    this.option = option;
  }

  /** True for an InvalidOptionError from any copy of this package. */
  static isInstance(error: unknown): error is InvalidOptionError {
    return hasCode(error, 'INVALID_OPTION');
  }
}

function describe(value: unknown): string {
  if (
    typeof value === 'number' ||
    typeof value === 'boolean' ||
    value === undefined ||
    value === null
  ) {
    return String(value);
  }
  if (typeof value === 'string') return JSON.stringify(value);
  return typeof value;
}
