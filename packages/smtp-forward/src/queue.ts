import type { DeliveryQueue, QueuedDelivery } from './ports.js';

/** What a queue handler learns about the attempt it runs. */
export interface AttemptInfo {
  /** 1 for the first attempt. */
  attempt: number;
  /** True when no retry follows: the handler should bounce instead of deferring. */
  finalAttempt: boolean;
}

/** Options of {@link LocalDeliveryQueue}. */
export interface LocalDeliveryQueueOptions {
  /** Attempts before the job is handed to the handler as final. Default: 8. */
  maxAttempts?: number;
  /** Delay before retry n (1-based), in ms. Default: 60_000 × 2^(n-1), capped at 4 h. */
  backoffMs?: (attempt: number) => number;
  /** Jobs run at once. Default: 4. */
  concurrency?: number;
}

/**
 * An in-process DeliveryQueue: retries with backoff, in memory. Durability comes from the
 * forwarder's spool files (re-add `forwarder.pendingSpool()` at start-up); use a Redis-backed
 * queue such as @postern/sync-queue when several processes share the work.
 */
export class LocalDeliveryQueue implements DeliveryQueue {
  readonly #maxAttempts: number;
  readonly #backoffMs: (attempt: number) => number;
  readonly #concurrency: number;
  readonly #waiting: { job: QueuedDelivery; attempt: number }[] = [];
  readonly #timers = new Set<NodeJS.Timeout>();
  #running = 0;
  #handler: ((job: QueuedDelivery, info: AttemptInfo) => Promise<void>) | undefined;
  #closed = false;
  #idle: (() => void)[] = [];

  constructor(options: LocalDeliveryQueueOptions = {}) {
    this.#maxAttempts = options.maxAttempts ?? 8;
    this.#backoffMs =
      options.backoffMs ?? ((attempt) => Math.min(60_000 * 2 ** (attempt - 1), 14_400_000));
    this.#concurrency = options.concurrency ?? 4;
  }

  /** Queues a job; resolves at once (the spool file is what makes it durable). */
  add(job: QueuedDelivery): Promise<void> {
    this.#waiting.push({ job, attempt: 1 });
    this.#pump();
    return Promise.resolve();
  }

  /** Starts running jobs with `handler`; a rejection schedules a retry unless it was the final attempt. */
  process(handler: (job: QueuedDelivery, info: AttemptInfo) => Promise<void>): void {
    this.#handler = handler;
    this.#pump();
  }

  /** Jobs waiting, running or scheduled for retry. */
  get size(): number {
    return this.#waiting.length + this.#running + this.#timers.size;
  }

  /** Resolves when no job is waiting, running or scheduled. */
  onIdle(): Promise<void> {
    if (this.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Stops scheduling; retries not yet due are dropped (their spool files remain). */
  close(): void {
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    this.#waiting.length = 0;
    this.#settle();
  }

  #settle(): void {
    if (this.size === 0) for (const resolve of this.#idle.splice(0)) resolve();
  }

  #pump(): void {
    const handler = this.#handler;
    if (handler === undefined || this.#closed) return;
    while (this.#running < this.#concurrency && this.#waiting.length > 0) {
      const { job, attempt } = this.#waiting.shift()!;
      this.#running += 1;
      const finalAttempt = attempt >= this.#maxAttempts;
      handler(job, { attempt, finalAttempt })
        .catch(() => {
          if (finalAttempt || this.#closed) return;
          const timer = setTimeout(() => {
            this.#timers.delete(timer);
            this.#waiting.push({ job, attempt: attempt + 1 });
            this.#pump();
          }, this.#backoffMs(attempt));
          timer.unref();
          this.#timers.add(timer);
        })
        .finally(() => {
          this.#running -= 1;
          this.#pump();
          this.#settle();
        });
    }
  }
}
