/* eslint-disable @typescript-eslint/prefer-promise-reject-errors -- rejections pass on the work's own errors and the caller's abort reason unchanged, whatever their type */
import type { Clock, TimerHandle } from './ports.js';
import { systemClock } from './clock.js';
import {
  BrokenCircuitError,
  BulkheadRejectedError,
  InvalidOptionError,
  RetryExhaustedError,
} from './errors.js';
import type { RetryStopReason } from './errors.js';
import type { Event } from './events.js';
import { Emitter } from './events.js';
import type { Link, Work } from './policy.js';
import { BasePolicy, invoke, RUN } from './policy.js';
import type { Scope } from './scope.js';
import { checkFunction, checkNumber } from './validate.js';

/** How delays between attempts are randomised. */
export type Jitter = 'none' | 'full' | 'decorrelated';

/** Limits retries to a share of calls so retries cannot multiply load during an outage. */
export interface RetryBudgetOptions {
  /** Retries earned per call, e.g. 0.1 = at most one retry per ten calls in the long run. Default: 0.1. */
  ratio?: number;
  /** Retries available at start and the most that can be saved up. Default: 10. */
  reserve?: number;
}

/** Passed to `onRetry` listeners before each wait. */
export interface RetryEvent {
  /** The attempt that just failed (1 = first call). */
  attempt: number;
  /** The wait before the next attempt, in ms. */
  delayMs: number;
  /** The error that caused the retry (undefined when `retryOnResult` caused it). */
  error: unknown;
  /** The value that caused the retry through `retryOnResult` (undefined otherwise). */
  result: unknown;
}

/** Options of `retry()`. */
export interface RetryOptions {
  /** Attempts in total, including the first call. Default: 3. */
  maxAttempts?: number;
  /** Base of the exponential backoff, in ms. Default: 100. */
  initialDelayMs?: number;
  /** Upper bound of any wait, in ms; a larger `retryAfterMs` hint ends the loop. Default: 30_000. */
  maxDelayMs?: number;
  /** Growth factor of the exponential backoff. Default: 2. */
  factor?: number;
  /** `'full'`: uniform in [0, exponential]; `'decorrelated'`: uniform in [initial, 3 × previous]; `'none'`. Default: `'full'`. */
  jitter?: Jitter;
  /** Decides whether an error is worth another attempt. Default: every error except the rejections below. */
  retryOn?: (error: unknown, attempt: number) => boolean;
  /**
   * Retries when the call resolved to a value this accepts (e.g. an HTTP 503 response); after the
   * last attempt that value is returned as is. Default: none.
   */
  retryOnResult?: (value: unknown, attempt: number) => boolean;
  /** Also retry `BrokenCircuitError` and `BulkheadRejectedError`, waiting at least their `retryAfterMs`. Default: false. */
  retryRejections?: boolean;
  /** Optional retry budget shared by every call through this policy. Default: none. */
  budget?: RetryBudgetOptions;
  /** Time source and timers for the waits. Default: the system clock. */
  clock?: Clock;
  /** Random source in [0, 1) for jitter. Default: Math.random. */
  random?: () => number;
  /** Let the process exit while a wait is pending. Default: false. */
  unref?: boolean;
}

const JITTERS: readonly Jitter[] = ['none', 'full', 'decorrelated'];

function retryAfterOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const value = (error as { retryAfterMs?: unknown }).retryAfterMs;
  return typeof value === 'number' && value >= 0 && !Number.isNaN(value) ? value : undefined;
}

/** Retry policy: runs `fn` again on failure with exponential backoff and jitter. */
export class RetryPolicy extends BasePolicy {
  private readonly maxAttempts: number;
  private readonly initialDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly factor: number;
  private readonly jitter: Jitter;
  private readonly retryOn: ((error: unknown, attempt: number) => boolean) | undefined;
  private readonly retryOnResult: ((value: unknown, attempt: number) => boolean) | undefined;
  private readonly retryRejections: boolean;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly unref: boolean;
  private readonly budgetRatio: number;
  private readonly budgetReserve: number;
  private budgetBalance: number;
  private readonly sleeps = new Set<() => void>();
  private readonly retryEmitter = new Emitter<RetryEvent>();
  private readonly giveUpEmitter = new Emitter<RetryExhaustedError>();

  /** Fires before each wait between attempts. */
  readonly onRetry: Event<RetryEvent> = this.retryEmitter.event;
  /** Fires when the loop gives up with `RetryExhaustedError` (disposal included). */
  readonly onGiveUp: Event<RetryExhaustedError> = this.giveUpEmitter.event;

  constructor(options: RetryOptions = {}) {
    super();
    this.maxAttempts = checkNumber('maxAttempts', options.maxAttempts ?? 3, {
      min: 1,
      integer: true,
    });
    this.initialDelayMs = checkNumber('initialDelayMs', options.initialDelayMs ?? 100);
    this.maxDelayMs = checkNumber('maxDelayMs', options.maxDelayMs ?? 30_000, {
      max: 2_147_483_647,
    });
    if (this.maxDelayMs < this.initialDelayMs) {
      throw new InvalidOptionError(
        'maxDelayMs',
        `must be >= initialDelayMs (${this.initialDelayMs})`,
        this.maxDelayMs,
      );
    }
    this.factor = checkNumber('factor', options.factor ?? 2, { min: 1 });
    const jitter = options.jitter ?? 'full';
    if (!JITTERS.includes(jitter))
      throw new InvalidOptionError('jitter', "must be 'none', 'full' or 'decorrelated'", jitter);
    this.jitter = jitter;
    checkFunction('retryOn', options.retryOn);
    checkFunction('random', options.random);
    this.retryOn = options.retryOn;
    checkFunction('retryOnResult', options.retryOnResult);
    this.retryOnResult = options.retryOnResult;
    this.retryRejections = options.retryRejections ?? false;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.unref = options.unref ?? false;
    const budget = options.budget;
    this.budgetRatio =
      budget === undefined
        ? Infinity
        : checkNumber('budget.ratio', budget.ratio ?? 0.1, { min: 0 });
    this.budgetReserve =
      budget === undefined
        ? Infinity
        : checkNumber('budget.reserve', budget.reserve ?? 10, { min: 0 });
    this.budgetBalance = this.budgetReserve;
  }

  /** Retries currently available from the budget (Infinity without a budget). */
  get budgetRemaining(): number {
    return this.budgetBalance;
  }

  /** @internal */
  async [RUN](
    fn: Work<unknown>,
    parent: Scope,
    chain: readonly Link[],
    index: number,
  ): Promise<unknown> {
    if (this.budgetBalance !== Infinity) {
      this.budgetBalance = Math.min(this.budgetReserve, this.budgetBalance + this.budgetRatio);
    }
    let previousDelay = this.initialDelayMs;
    for (let attempt = 1; ; attempt++) {
      if (parent.isAborted) throw parent.abortReason;
      let delay: number;
      // What a disposal during the wait reports: undefined after a value retryOnResult accepted.
      let lastError: unknown = undefined;
      try {
        const value = await invoke(
          fn,
          attempt === 1 ? parent : parent.withAttempt(attempt),
          chain,
          index,
        );
        if (
          this.retryOnResult === undefined ||
          attempt >= this.maxAttempts ||
          !this.retryOnResult(value, attempt)
        ) {
          return value;
        }
        if (parent.isAborted || this.budgetBalance < 1) return value;
        delay = this.backoff(attempt, previousDelay);
        previousDelay = delay;
        this.budgetBalance -= 1;
        if (this.retryEmitter.active)
          this.retryEmitter.emit({ attempt, delayMs: delay, error: undefined, result: value });
      } catch (error) {
        // The caller gave up: their reason wins, and nothing is retried on their behalf.
        if (parent.isAborted) throw parent.abortReason;
        lastError = error;
        if (!this.shouldRetry(error, attempt)) throw error;
        if (attempt >= this.maxAttempts) throw this.giveUp(attempt, error, 'attempts');
        delay = this.backoff(attempt, previousDelay);
        previousDelay = delay;
        const hint = retryAfterOf(error);
        if (hint !== undefined && hint > delay) {
          if (hint > this.maxDelayMs) throw this.giveUp(attempt, error, 'retry-after');
          delay = hint;
        }
        if (this.budgetBalance < 1) throw this.giveUp(attempt, error, 'budget');
        this.budgetBalance -= 1;
        if (this.retryEmitter.active)
          this.retryEmitter.emit({ attempt, delayMs: delay, error, result: undefined });
      }
      if (delay > 0) await this.sleep(delay, parent, attempt, lastError);
    }
  }

  /**
   * Cancels every pending wait: each call waiting rejects at once with `RetryExhaustedError`
   * (`reason: 'disposed'`, the attempts made and the last error). Later calls run as usual.
   */
  [Symbol.asyncDispose](): Promise<void> {
    for (const cancel of [...this.sleeps]) cancel();
    return Promise.resolve();
  }

  private shouldRetry(error: unknown, attempt: number): boolean {
    if (
      !this.retryRejections &&
      (BrokenCircuitError.isInstance(error) || BulkheadRejectedError.isInstance(error))
    ) {
      return false;
    }
    return this.retryOn === undefined ? true : this.retryOn(error, attempt);
  }

  private backoff(attempt: number, previousDelay: number): number {
    const { initialDelayMs, maxDelayMs } = this;
    switch (this.jitter) {
      case 'none':
        return Math.min(maxDelayMs, initialDelayMs * this.factor ** (attempt - 1));
      case 'full':
        return Math.min(maxDelayMs, initialDelayMs * this.factor ** (attempt - 1)) * this.random();
      case 'decorrelated': {
        const upper = Math.max(initialDelayMs, previousDelay * 3);
        return Math.min(maxDelayMs, initialDelayMs + (upper - initialDelayMs) * this.random());
      }
    }
  }

  private giveUp(attempts: number, error: unknown, reason: RetryStopReason): RetryExhaustedError {
    const exhausted = new RetryExhaustedError(attempts, error, reason);
    if (this.giveUpEmitter.active) this.giveUpEmitter.emit(exhausted);
    return exhausted;
  }

  private sleep(ms: number, scope: Scope, attempts: number, lastError: unknown): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let timer: TimerHandle = undefined;
      const cleanup = (): void => {
        this.clock.clearTimeout(timer);
        unsubscribe();
        this.sleeps.delete(cancel);
      };
      const cancel = (): void => {
        cleanup();
        reject(this.giveUp(attempts, lastError, 'disposed'));
      };
      if (scope.isAborted) {
        reject(scope.abortReason);
        return;
      }
      const unsubscribe = scope.subscribe((reason) => {
        cleanup();
        reject(reason);
      });
      this.sleeps.add(cancel);
      timer = this.clock.setTimeout(
        () => {
          cleanup();
          resolve();
        },
        ms,
        this.unref,
      );
    });
  }
}

/** Creates a retry policy; `retry()` makes 3 attempts with full-jitter exponential backoff from 100ms. */
export function retry(options: RetryOptions = {}): RetryPolicy {
  return new RetryPolicy({ ...options });
}
