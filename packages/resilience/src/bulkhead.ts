/* eslint-disable @typescript-eslint/prefer-promise-reject-errors -- rejections pass on the work's own errors and the caller's abort reason unchanged, whatever their type */
import type { Clock, TimerHandle } from './ports.js';
import { systemClock } from './clock.js';
import { BulkheadRejectedError } from './errors.js';
import type { BulkheadRejectReason } from './errors.js';
import type { Event } from './events.js';
import { Emitter } from './events.js';
import type { Link, Work } from './policy.js';
import { BasePolicy, RUN, runNext } from './policy.js';
import type { Scope } from './scope.js';
import { checkNumber } from './validate.js';

/** Options of `bulkhead()`. */
export interface BulkheadOptions {
  /** Calls allowed to run at once. Required. */
  limit: number;
  /** Calls allowed to wait for a slot; more are rejected at once. Default: 0. */
  queue?: number;
  /** Longest a call may wait in the queue, in ms. Default: none (waits until a slot frees or the caller aborts). */
  queueTimeoutMs?: number;
  /** Time source and timers for `queueTimeoutMs`. Default: the system clock. */
  clock?: Clock;
}

interface Waiter {
  admit(): void;
}

/** Bulkhead: at most `limit` calls run at once, at most `queue` wait; queued calls are abortable. */
export class BulkheadPolicy extends BasePolicy {
  /** Calls allowed to run at once. */
  readonly limit: number;
  /** Calls allowed to wait. */
  readonly queueLimit: number;
  private readonly queueTimeoutMs: number | undefined;
  private readonly clock: Clock;
  private running = 0;
  private readonly waiting: Waiter[] = [];
  private readonly drained: Array<() => void> = [];
  private closed = false;
  private readonly rejectEmitter = new Emitter<BulkheadRejectedError>();

  /** Fires when a call is rejected. */
  readonly onRejected: Event<BulkheadRejectedError> = this.rejectEmitter.event;

  constructor(options: BulkheadOptions) {
    super();
    this.limit = checkNumber('limit', options.limit, { min: 1, integer: true });
    this.queueLimit = checkNumber('queue', options.queue ?? 0, {
      integer: true,
      allowInfinity: true,
    });
    this.queueTimeoutMs =
      options.queueTimeoutMs === undefined
        ? undefined
        : checkNumber('queueTimeoutMs', options.queueTimeoutMs, { max: 2_147_483_647 });
    this.clock = options.clock ?? systemClock;
  }

  /** Calls running now. */
  get active(): number {
    return this.running;
  }

  /** Calls waiting for a slot now. */
  get queued(): number {
    return this.waiting.length;
  }

  /** @internal */
  [RUN](fn: Work<unknown>, scope: Scope, chain: readonly Link[], index: number): Promise<unknown> {
    if (scope.isAborted) return Promise.reject(scope.abortReason);
    if (this.closed) return Promise.reject(this.reject('disposed'));
    if (this.running < this.limit) {
      this.running++;
      return this.run(fn, scope, chain, index);
    }
    if (this.waiting.length >= this.queueLimit) return Promise.reject(this.reject('full'));
    return this.enqueue(scope).then(() => {
      // The caller may abort between the hand-over of the slot and this continuation: pass the
      // slot on instead of running a call nobody waits for.
      if (scope.isAborted) {
        this.release();
        return Promise.reject(scope.abortReason);
      }
      return this.run(fn, scope, chain, index);
    });
  }

  /** Rejects every queued call, then resolves once the running calls have finished. */
  [Symbol.asyncDispose](): Promise<void> {
    this.closed = true;
    for (const waiter of this.waiting.splice(0)) waiter.admit();
    if (this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.drained.push(resolve));
  }

  private async run(
    fn: Work<unknown>,
    scope: Scope,
    chain: readonly Link[],
    index: number,
  ): Promise<unknown> {
    try {
      return await runNext(fn, scope, chain, index);
    } finally {
      this.release();
    }
  }

  private release(): void {
    // Hand the slot straight to the next waiter so a newcomer cannot overtake the queue.
    const next = this.waiting.shift();
    if (next !== undefined) {
      next.admit();
      return;
    }
    this.running--;
    if (this.running === 0 && this.drained.length > 0)
      for (const resolve of this.drained.splice(0)) resolve();
  }

  private reject(reason: BulkheadRejectReason): BulkheadRejectedError {
    const error = new BulkheadRejectedError(this.running, this.waiting.length, reason);
    if (this.rejectEmitter.active) this.rejectEmitter.emit(error);
    return error;
  }

  private enqueue(scope: Scope): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let timer: TimerHandle = undefined;
      const leave = (): void => {
        const at = this.waiting.indexOf(waiter);
        if (at !== -1) this.waiting.splice(at, 1);
        if (timer !== undefined) this.clock.clearTimeout(timer);
        unsubscribe();
      };
      const waiter: Waiter = {
        admit: () => {
          if (timer !== undefined) this.clock.clearTimeout(timer);
          unsubscribe();
          if (this.closed) {
            reject(new BulkheadRejectedError(this.running, this.waiting.length, 'disposed'));
            return;
          }
          // The slot of the call that finished passes to this one: `running` stays the same.
          resolve();
        },
      };
      const unsubscribe = scope.subscribe((reason) => {
        leave();
        reject(reason);
      });
      this.waiting.push(waiter);
      if (this.queueTimeoutMs !== undefined) {
        timer = this.clock.setTimeout(
          () => {
            timer = undefined;
            leave();
            reject(this.reject('queue-timeout'));
          },
          this.queueTimeoutMs,
          false,
        );
      }
    });
  }
}

/** Creates a bulkhead: `bulkhead(10)`, `bulkhead(10, 100)` or `bulkhead({ limit: 10, queue: 100 })`. */
export function bulkhead(limitOrOptions: number | BulkheadOptions, queue?: number): BulkheadPolicy {
  if (typeof limitOrOptions === 'number') {
    return new BulkheadPolicy(
      queue === undefined ? { limit: limitOrOptions } : { limit: limitOrOptions, queue },
    );
  }
  return new BulkheadPolicy({ ...limitOrOptions });
}
