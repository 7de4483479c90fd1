import { SyncQueueError } from './errors.js';
import { checkInteger, checkNumber, checkOptions } from './validate.js';

/** How failed runs are retried. */
export interface RetryOptions {
  /** Runs allowed per job (first run included) before it is dead-lettered. Default: 5. */
  maxAttempts?: number;
  /** Delay before the first retry, in ms. Default: 1_000. */
  initialDelayMs?: number;
  /** Growth of the delay per attempt. Default: 2. */
  factor?: number;
  /** Upper bound of a delay, in ms. Default: 300_000 (5 minutes). */
  maxDelayMs?: number;
  /** Randomise each delay between half and all of its value so failing workers do not retry in step. Default: true. */
  jitter?: boolean;
}

/** Retry options with every default filled in. */
export type ResolvedRetryOptions = Required<RetryOptions>;

/** Defaults of RetryOptions. */
export const RETRY_DEFAULTS: ResolvedRetryOptions = {
  maxAttempts: 5,
  initialDelayMs: 1_000,
  factor: 2,
  maxDelayMs: 300_000,
  jitter: true,
};

/** Merges and validates retry options. */
export function resolveRetry(options?: RetryOptions): ResolvedRetryOptions {
  const merged = { ...RETRY_DEFAULTS, ...checkOptions('retry', options) };
  checkInteger('retry.maxAttempts', merged.maxAttempts, 1, 1_000_000);
  checkNumber('retry.initialDelayMs', merged.initialDelayMs, 0);
  checkNumber('retry.factor', merged.factor, 1, 1_000);
  checkNumber('retry.maxDelayMs', merged.maxDelayMs, 0);
  if (typeof merged.jitter !== 'boolean') {
    throw new SyncQueueError('INVALID_OPTIONS', 'retry.jitter must be a boolean.');
  }
  return merged;
}

/** Delay before the retry that follows failed run number `attempt` (1-based), in ms. */
export function backoffDelay(
  options: ResolvedRetryOptions,
  attempt: number,
  random: () => number,
): number {
  const growth = options.factor ** Math.max(0, attempt - 1);
  // 0 * Infinity is NaN: a zero initial delay stays zero however many attempts were made.
  const exponential = options.initialDelayMs === 0 ? 0 : options.initialDelayMs * growth;
  const capped = Number.isFinite(exponential)
    ? Math.min(options.maxDelayMs, exponential)
    : options.maxDelayMs;
  if (!options.jitter) return Math.round(capped);
  // A user-supplied random source may return anything: keep the jitter within [0, 1].
  const drawn = random();
  const unit = Number.isFinite(drawn) ? Math.min(1, Math.max(0, drawn)) : 0.5;
  return Math.round(capped / 2 + (unit * capped) / 2);
}
