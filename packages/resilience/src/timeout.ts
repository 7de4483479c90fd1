/* eslint-disable @typescript-eslint/prefer-promise-reject-errors -- rejections pass on the work's own errors and the caller's abort reason unchanged, whatever their type */
import type { Clock } from './ports.js';
import { systemClock } from './clock.js';
import { InvalidOptionError, TimeoutError } from './errors.js';
import type { Event } from './events.js';
import { Emitter } from './events.js';
import type { Link, Work } from './policy.js';
import { BasePolicy, invoke, RUN } from './policy.js';
import type { Scope } from './scope.js';
import { checkNumber } from './validate.js';

/** When a timed-out call rejects. */
export type TimeoutStrategy = 'aggressive' | 'cooperative';

/** Options of `timeout()`. */
export interface TimeoutOptions {
  /** Time a call may run before its signal is aborted, in ms. Required. */
  timeoutMs: number;
  /**
   * `'aggressive'`: reject with `TimeoutError` as soon as the time is up (and as soon as the caller
   * aborts). `'cooperative'`: abort the signal, then reject once `fn` settles. Default: `'aggressive'`.
   */
  strategy?: TimeoutStrategy;
  /** Let the process exit while a timer is pending. Default: false. */
  unref?: boolean;
  /** Time source and timers. Default: the system clock. */
  clock?: Clock;
}

/** Timeout policy: aborts the signal it hands to `fn` after `timeoutMs` and rejects with `TimeoutError`. */
export class TimeoutPolicy extends BasePolicy {
  /** The limit, in ms. */
  readonly timeoutMs: number;
  /** When a timed-out call rejects. */
  readonly strategy: TimeoutStrategy;
  private readonly unref: boolean;
  private readonly clock: Clock;
  private readonly timeoutEmitter = new Emitter<{ timeoutMs: number }>();

  /** Fires each time a call times out. */
  readonly onTimeout: Event<{ timeoutMs: number }> = this.timeoutEmitter.event;

  constructor(options: TimeoutOptions) {
    super();
    this.timeoutMs = checkNumber('timeoutMs', options.timeoutMs, { min: 1, max: 2_147_483_647 });
    const strategy = options.strategy ?? 'aggressive';
    if (strategy !== 'aggressive' && strategy !== 'cooperative') {
      throw new InvalidOptionError('strategy', "must be 'aggressive' or 'cooperative'", strategy);
    }
    this.strategy = strategy;
    this.unref = options.unref ?? false;
    this.clock = options.clock ?? systemClock;
  }

  /** @internal */
  [RUN](fn: Work<unknown>, parent: Scope, chain: readonly Link[], index: number): Promise<unknown> {
    if (parent.isAborted) return Promise.reject(parent.abortReason);
    const scope = parent.child();
    const { clock, timeoutMs } = this;
    const aggressive = this.strategy === 'aggressive';
    return new Promise((resolve, reject) => {
      let done = false;
      let timeoutError: TimeoutError | undefined;
      let unsubscribe: (() => void) | undefined;
      const finish = (): void => {
        done = true;
        clock.clearTimeout(timer);
        unsubscribe?.();
        // Detach before settling: the signal handed to fn is never aborted after this point.
        scope.dispose();
      };
      const timer = clock.setTimeout(
        () => {
          // A caller abort came first: its reason stands, and this is no timeout.
          if (done || parent.isAborted) return;
          timeoutError = new TimeoutError(timeoutMs);
          scope.abort(timeoutError);
          if (this.timeoutEmitter.active) this.timeoutEmitter.emit({ timeoutMs });
          if (aggressive) {
            finish();
            reject(timeoutError);
          }
        },
        timeoutMs,
        this.unref,
      );
      // Listen for aborts from above only when something above can abort.
      if (aggressive && parent.abortable) {
        unsubscribe = scope.subscribe((reason) => {
          if (done || timeoutError !== undefined) return;
          finish();
          reject(reason);
        });
      }
      invoke(fn, scope, chain, index).then(
        (value) => {
          if (done) return;
          finish();
          if (timeoutError === undefined) resolve(value);
          else reject(timeoutError);
        },
        (error: unknown) => {
          if (done) return;
          finish();
          reject(timeoutError ?? error);
        },
      );
    });
  }
}

/** Creates a timeout policy: `timeout(5_000)` or `timeout({ timeoutMs: 5_000, strategy: 'cooperative' })`. */
export function timeout(msOrOptions: number | TimeoutOptions): TimeoutPolicy {
  return new TimeoutPolicy(
    typeof msOrOptions === 'number' ? { timeoutMs: msOrOptions } : { ...msOrOptions },
  );
}
