import { InvalidOptionError } from './errors.js';
import { checkNumber } from './validate.js';

/** Opens after `threshold` failures (or slow calls) in a row; any success resets the count. */
export interface ConsecutiveStrategyOptions {
  kind: 'consecutive';
  /** Failures in a row that open the circuit. Default: 5. */
  threshold?: number;
}

/** Options shared by both sliding-window strategies. */
export interface RateStrategyOptions {
  /** Calls the window must hold before a rate can open the circuit. Default: 10 (count window: at most `size`). */
  minimumCalls?: number;
  /** Share of failed calls in the window that opens the circuit, in (0, 1]. Default: 0.5. */
  failureRateThreshold?: number;
  /** Share of slow calls (see `slowCallMs`) in the window that opens the circuit, in (0, 1]. Default: 1. */
  slowCallRateThreshold?: number;
}

/** Failure rate over the last `size` calls. */
export interface CountWindowStrategyOptions extends RateStrategyOptions {
  kind: 'count-window';
  /** Calls the window holds. Required; must be >= `minimumCalls`. */
  size: number;
}

/** Failure rate over the last `durationMs`, kept in `buckets` slices. */
export interface TimeWindowStrategyOptions extends RateStrategyOptions {
  kind: 'time-window';
  /** Length of the window, in ms. Required. */
  durationMs: number;
  /** Slices the window is kept in (the window slides one slice at a time). Default: 10. */
  buckets?: number;
}

/** How a closed circuit decides to open. */
export type BreakerStrategyOptions =
  ConsecutiveStrategyOptions | CountWindowStrategyOptions | TimeWindowStrategyOptions;

/** @internal Counts outcomes while the circuit is closed. */
export interface Strategy {
  /** Records one outcome; true when the circuit should open. */
  record(failure: boolean, slow: boolean, now: number): boolean;
  reset(): void;
  /** Whether `record` needs a real `now` (time-based strategies). */
  readonly needsTime: boolean;
}

class ConsecutiveStrategy implements Strategy {
  readonly needsTime = false;
  private count = 0;
  constructor(private readonly threshold: number) {}

  record(failure: boolean, slow: boolean): boolean {
    if (failure || slow) return ++this.count >= this.threshold;
    this.count = 0;
    return false;
  }

  reset(): void {
    this.count = 0;
  }
}

const FAILED = 1;
const SLOW = 2;

class CountWindowStrategy implements Strategy {
  readonly needsTime = false;
  private readonly outcomes: Uint8Array;
  private next = 0;
  private filled = 0;
  private failures = 0;
  private slows = 0;

  constructor(
    size: number,
    private readonly minimumCalls: number,
    private readonly failureRate: number,
    private readonly slowRate: number,
  ) {
    this.outcomes = new Uint8Array(size);
  }

  record(failure: boolean, slow: boolean): boolean {
    const size = this.outcomes.length;
    if (this.filled === size) {
      const old = this.outcomes[this.next] ?? 0;
      if (old & FAILED) this.failures--;
      if (old & SLOW) this.slows--;
    } else {
      this.filled++;
    }
    this.outcomes[this.next] = (failure ? FAILED : 0) | (slow ? SLOW : 0);
    if (failure) this.failures++;
    if (slow) this.slows++;
    this.next = this.next + 1 === size ? 0 : this.next + 1;
    return (
      this.filled >= this.minimumCalls &&
      (this.failures >= this.failureRate * this.filled || this.slows >= this.slowRate * this.filled)
    );
  }

  reset(): void {
    this.outcomes.fill(0);
    this.next = 0;
    this.filled = 0;
    this.failures = 0;
    this.slows = 0;
  }
}

class TimeWindowStrategy implements Strategy {
  readonly needsTime = true;
  private readonly calls: Uint32Array;
  private readonly failures: Uint32Array;
  private readonly slows: Uint32Array;
  private readonly bucketMs: number;
  private current = -Infinity;
  private totalCalls = 0;
  private totalFailures = 0;
  private totalSlows = 0;

  constructor(
    durationMs: number,
    buckets: number,
    private readonly minimumCalls: number,
    private readonly failureRate: number,
    private readonly slowRate: number,
  ) {
    this.calls = new Uint32Array(buckets);
    this.failures = new Uint32Array(buckets);
    this.slows = new Uint32Array(buckets);
    this.bucketMs = durationMs / buckets;
  }

  record(failure: boolean, slow: boolean, now: number): boolean {
    const buckets = this.calls.length;
    const bucket = Math.floor(now / this.bucketMs);
    if (bucket > this.current) {
      // Expire the slices that slid out of the window (at most all of them).
      const stale = Math.min(buckets, bucket - this.current);
      for (let i = 1; i <= stale; i++) this.clear(bucket - stale + i);
      this.current = bucket;
    }
    // A clock that stepped back counts into the current slice.
    const slot = ((this.current % buckets) + buckets) % buckets;
    this.calls[slot]!++;
    this.totalCalls++;
    if (failure) {
      this.failures[slot]!++;
      this.totalFailures++;
    }
    if (slow) {
      this.slows[slot]!++;
      this.totalSlows++;
    }
    return (
      this.totalCalls >= this.minimumCalls &&
      (this.totalFailures >= this.failureRate * this.totalCalls ||
        this.totalSlows >= this.slowRate * this.totalCalls)
    );
  }

  private clear(index: number): void {
    const slot = ((index % this.calls.length) + this.calls.length) % this.calls.length;
    this.totalCalls -= this.calls[slot]!;
    this.totalFailures -= this.failures[slot]!;
    this.totalSlows -= this.slows[slot]!;
    this.calls[slot] = 0;
    this.failures[slot] = 0;
    this.slows[slot] = 0;
  }

  reset(): void {
    this.calls.fill(0);
    this.failures.fill(0);
    this.slows.fill(0);
    this.current = -Infinity;
    this.totalCalls = 0;
    this.totalFailures = 0;
    this.totalSlows = 0;
  }
}

function rates(options: RateStrategyOptions, defaultMinimum: number): [number, number, number] {
  const minimumCalls = checkNumber(
    'strategy.minimumCalls',
    options.minimumCalls ?? defaultMinimum,
    { min: 1, integer: true },
  );
  const failureRate = checkNumber(
    'strategy.failureRateThreshold',
    options.failureRateThreshold ?? 0.5,
    { max: 1 },
  );
  const slowRate = checkNumber(
    'strategy.slowCallRateThreshold',
    options.slowCallRateThreshold ?? 1,
    { max: 1 },
  );
  if (failureRate === 0)
    throw new InvalidOptionError('strategy.failureRateThreshold', 'must be > 0', failureRate);
  if (slowRate === 0)
    throw new InvalidOptionError('strategy.slowCallRateThreshold', 'must be > 0', slowRate);
  return [minimumCalls, failureRate, slowRate];
}

/** @internal Validates strategy options and builds the counter. */
export function createStrategy(options: BreakerStrategyOptions | undefined): Strategy {
  if (options === undefined) return new ConsecutiveStrategy(5);
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError('strategy', 'must be an object with a kind', options);
  }
  switch (options.kind) {
    case 'consecutive':
      return new ConsecutiveStrategy(
        checkNumber('strategy.threshold', options.threshold ?? 5, { min: 1, integer: true }),
      );
    case 'count-window': {
      const size = checkNumber('strategy.size', options.size, { min: 1, integer: true });
      const [minimumCalls, failureRate, slowRate] = rates(options, Math.min(10, size));
      if (size < minimumCalls) {
        throw new InvalidOptionError(
          'strategy.size',
          `must be >= strategy.minimumCalls (${minimumCalls})`,
          size,
        );
      }
      return new CountWindowStrategy(size, minimumCalls, failureRate, slowRate);
    }
    case 'time-window': {
      const durationMs = checkNumber('strategy.durationMs', options.durationMs, { min: 1 });
      const buckets = checkNumber('strategy.buckets', options.buckets ?? 10, {
        min: 1,
        integer: true,
        max: 10_000,
      });
      const [minimumCalls, failureRate, slowRate] = rates(options, 10);
      return new TimeWindowStrategy(durationMs, buckets, minimumCalls, failureRate, slowRate);
    }
    default:
      throw new InvalidOptionError(
        'strategy.kind',
        "must be 'consecutive', 'count-window' or 'time-window'",
        (options as { kind?: unknown }).kind,
      );
  }
}
