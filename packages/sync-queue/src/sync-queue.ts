import type {
  AddResult,
  ClaimResult,
  CompleteResult,
  CompletedRecord,
  CompletedRetention,
  DeadLetterRecord,
  ExpiredJob,
  FencedResult,
  LeasedJob,
  NewJob,
  QueueBackend,
  QueueStats,
} from './backend.js';
import { backoffDelay, resolveRetry } from './backoff.js';
import type { ResolvedRetryOptions, RetryOptions } from './backoff.js';
import { PermanentError, SyncQueueError, toError } from './errors.js';
import { EventSource } from './events.js';
import type { Disposable } from './events.js';
import { MemoryBackend } from './memory-backend.js';
import { silentLogger, systemClock } from './ports.js';
import type { Clock, Logger } from './ports.js';
import {
  DEFAULT_MAX_KEY_BYTES,
  DEFAULT_MAX_PAYLOAD_BYTES,
  checkInteger,
  checkKey,
  checkNumber,
  checkOptions,
  serialisePayload,
} from './validate.js';

/** A job as a handler sees it. */
export interface Job<T> {
  /** Stable id: use it as the idempotency key of the handler's side effects. */
  readonly id: string;
  /** Coalescing key, or null. */
  readonly key: string | null;
  readonly payload: T;
  /** 1 on the first run, 2 on the first retry, ... */
  readonly attempt: number;
  /** Runs allowed before the job is dead-lettered. */
  readonly maxAttempts: number;
  /** When the job was first stored, in ms since the epoch. */
  readonly createdAt: number;
}

/** Second argument of a handler. */
export interface HandlerContext {
  /** Aborted when the lease is lost, the handler times out or the worker closes. */
  readonly signal: AbortSignal;
}

/** Processes one job; resolve to complete it, throw to retry it (or PermanentError to dead-letter it). */
export type Handler<T> = (job: Job<T>, context: HandlerContext) => unknown;

/** Options of SyncQueue. */
export interface SyncQueueOptions {
  /** Queue name: 1-200 characters, no braces. */
  name: string;
  /** Where jobs live. Default: a new MemoryBackend. */
  backend?: QueueBackend;
  /** Retry policy. Default: 5 attempts, 1 s doubling to 5 min, with jitter. */
  retry?: RetryOptions;
  /** Lease of a running job, in ms; renewed every leaseMs / 2 while the handler runs. Default: 30_000. */
  leaseMs?: number;
  /** Largest serialised payload, in bytes. Default: 524_288 (512 KiB). */
  maxPayloadBytes?: number;
  /** Longest key, in UTF-8 bytes. Default: 512. */
  maxKeyBytes?: number;
  /** Receives warnings and errors. Default: silent. */
  logger?: Logger;
  /** Source of time. Default: the system clock. */
  clock?: Clock;
  /** Source of randomness for jitter, in [0, 1). Default: Math.random. */
  random?: () => number;
  /** Keep completed jobs for inspection (`completed.list()`), bounded. Default: off, each completed job is deleted. */
  keepCompleted?: KeepCompletedOptions;
}

/** Which completed jobs to keep. Both limits apply; the kept jobs are trimmed in the same step that completes a job. */
export interface KeepCompletedOptions {
  /** Most completed jobs kept (the latest ones); 0 keeps none. Default: 1_000. */
  count?: number;
  /** Keep only jobs completed less than this long ago, in ms. Default: no age limit. */
  ageMs?: number;
}

/** Options of `add`. */
export interface AddOptions {
  /** Coalescing key: jobs with the same key coalesce while waiting and never run concurrently. */
  key?: string;
  /** Delay before the job may run, in ms. Default: 0. */
  delayMs?: number;
  /** Runs allowed for this job; overrides retry.maxAttempts. */
  attempts?: number;
}

/** One item of `addBulk`. */
export interface BulkItem<T> extends AddOptions {
  payload: T;
}

/** Options of `process`. */
export interface ProcessOptions {
  /** Handlers run at once by this worker. Default: 1. */
  concurrency?: number;
  /** How often an idle worker looks for jobs, in ms. Default: 100. */
  pollIntervalMs?: number;
  /** Time a handler may run before its signal is aborted and the run counts as failed, in ms. Default: 600_000. */
  timeoutMs?: number;
}

/** Options of `close`. */
export interface CloseOptions {
  /**
   * Time running handlers get to finish before they are aborted and their jobs returned to
   * waiting, in ms: a finite number >= 0 (above 2^31-1 counts as 2^31-1). Default: 30_000.
   */
  timeoutMs?: number;
}

/** A running consumer returned by `process`. */
export interface Worker {
  /**
   * Stops claiming, waits for running handlers up to the timeout, returns the rest to waiting.
   * Resolves once done; rejects with INVALID_OPTIONS, before changing anything, when `options`
   * is not an object or `timeoutMs` is not a finite number >= 0.
   */
  close(options?: CloseOptions): Promise<void>;
  /** When the worker last reached the backend to claim, in ms since the epoch (null before the first claim): a stuck worker shows an old value. */
  readonly lastClaimAt: number | null;
  /** Handlers running now. */
  readonly active: number;
  /** True once close() was called. */
  readonly closed: boolean;
}

/** A dead-lettered job with its payload parsed. */
export interface DeadLetter<T> extends Omit<DeadLetterRecord, 'payload'> {
  /** The parsed payload; undefined when the stored text is not valid JSON (see `rawPayload`). */
  readonly payload: T;
  /** The stored payload text, present only when it is not valid JSON. */
  readonly rawPayload?: string;
}

/** A kept completed job with its payload parsed. */
export interface CompletedJob<T> extends Omit<CompletedRecord, 'payload'> {
  /** The parsed payload; undefined when the stored text is not valid JSON (see `rawPayload`). */
  readonly payload: T;
  /** The stored payload text, present only when it is not valid JSON. */
  readonly rawPayload?: string;
}

/** Kept completed jobs (see the `keepCompleted` option). */
export interface CompletedJobs<T> {
  /** Lists kept completed jobs, latest completion first. */
  list(options?: { offset?: number; limit?: number }): Promise<CompletedJob<T>[]>;
}

/** Dead-letter operations. */
export interface DeadLetters<T> {
  /** Lists dead letters, oldest first. */
  list(options?: { offset?: number; limit?: number }): Promise<DeadLetter<T>[]>;
  /** Moves a dead letter back to waiting with fresh attempts; resolves to the id that will run. */
  retry(id: string): Promise<string>;
  /** Deletes every dead letter; resolves to how many. */
  purge(): Promise<number>;
}

/** Event of `onCompleted`. */
export interface CompletedEvent<T> {
  readonly job: Job<T>;
}
/** Event of `onFailed`: a run failed; `retryInMs` is null when the job went to the dead letters. */
export interface FailedEvent<T> {
  readonly job: Job<T>;
  readonly error: Error;
  readonly retryInMs: number | null;
}
/** Event of `onDead`. */
export interface DeadEvent<T = unknown> {
  readonly id: string;
  /** The last run's error; `LEASE_LOST` (with `attempts`) when the lease of the last attempt expired. */
  readonly error: Error;
  /**
   * The job as its last run saw it (`payload` undefined when the stored text is not valid JSON;
   * `attempt` is the last run). Present when a worker of this queue object ran the last attempt,
   * and when a worker's claim dead-lettered the job because the lease of its last attempt
   * expired, whichever process ran it, provided the backend reports `deadJobs` (MemoryBackend and
   * RedisBackend do). Absent only with a backend that does not: read it from `deadLetters.list()`.
   */
  readonly job?: Job<T>;
}
/** Event of `onStalled`: a lease expired and the job went back to waiting. */
export interface StalledEvent {
  readonly id: string;
}
/** Event of `onLeaseLost`: a run's lease expired, so its outcome was refused. */
export interface LeaseLostEvent<T> {
  readonly job: Job<T>;
}
/** Event of `onError`: a backend call failed; the worker keeps going. */
export interface ErrorEvent {
  readonly error: Error;
}

const QUEUE_NAME = /^[^{}]{1,200}$/;
const MAX_ERROR_CHARS = 2_000;
/** Longest delay setTimeout can hold; a longer one fires at once (TimeoutOverflowWarning). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Longest delay of a job or a retry, in ms (10 years, as for `delayMs`). */
const MAX_DELAY_MS = 10 * 365 * 86_400_000;

interface Internals<T> {
  readonly name: string;
  readonly backend: QueueBackend;
  readonly retry: ResolvedRetryOptions;
  readonly leaseMs: number;
  readonly keepCompleted: CompletedRetention | undefined;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly random: () => number;
  readonly events: QueueEvents<T>;
  readonly workers: Set<QueueWorker<T>>;
}

interface QueueEvents<T> {
  readonly completed: EventSource<CompletedEvent<T>>;
  readonly failed: EventSource<FailedEvent<T>>;
  readonly dead: EventSource<DeadEvent<T>>;
  readonly stalled: EventSource<StalledEvent>;
  readonly leaseLost: EventSource<LeaseLostEvent<T>>;
  readonly error: EventSource<ErrorEvent>;
}

function parsePayload<T>(text: string): T {
  return JSON.parse(text) as T;
}

/** The job a handler or listener sees: the fields of `Job` only (never the lease token). */
function toJob<T>(record: LeasedJob | ExpiredJob, payload: T): Job<T> {
  return {
    id: record.id,
    key: record.key,
    payload,
    attempt: record.attempt,
    maxAttempts: record.maxAttempts,
    createdAt: record.createdAt,
  };
}

/** Validates the options of `close` before anything is closed; resolves the timeout. */
function closeTimeoutMs(options: CloseOptions | undefined): number {
  return checkNumber(
    'close.timeoutMs',
    checkOptions('close options', options).timeoutMs ?? 30_000,
    0,
  );
}

/**
 * Parses the payload of a listed record. A payload that is not valid JSON (the very reason such a
 * job was dead-lettered) must not make the whole listing fail: it comes back as `rawPayload`.
 */
function parseRecord<R extends { readonly payload: string }, T>(
  record: R,
): Omit<R, 'payload'> & { readonly payload: T; readonly rawPayload?: string } {
  try {
    return { ...record, payload: parsePayload<T>(record.payload) };
  } catch {
    return { ...record, payload: undefined as T, rawPayload: record.payload };
  }
}

function resolveKeepCompleted(
  options: KeepCompletedOptions | undefined,
): CompletedRetention | undefined {
  if (options === undefined) return undefined;
  checkOptions('keepCompleted', options);
  const count = checkInteger('keepCompleted.count', options.count ?? 1_000, 0, 1_000_000);
  const ageMs =
    options.ageMs === undefined ? null : checkInteger('keepCompleted.ageMs', options.ageMs, 1);
  return count === 0 ? undefined : { count, ageMs };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A durable, at-least-once retry queue with sync semantics: jobs with the same key coalesce
 * while waiting and never run concurrently.
 */
export class SyncQueue<T> {
  /** Queue name. */
  readonly name: string;
  /** Dead-letter operations. */
  readonly deadLetters: DeadLetters<T>;
  /** Kept completed jobs; empty unless the queue was made with `keepCompleted`. */
  readonly completed: CompletedJobs<T>;
  readonly #internals: Internals<T>;
  readonly #maxPayloadBytes: number;
  readonly #maxKeyBytes: number;
  #closed = false;

  constructor(options: SyncQueueOptions) {
    if (typeof options.name !== 'string' || !QUEUE_NAME.test(options.name)) {
      throw new SyncQueueError('INVALID_OPTIONS', 'name must be 1-200 characters without braces.');
    }
    const leaseMs = checkInteger('leaseMs', options.leaseMs ?? 30_000, 10, MAX_TIMER_MS);
    this.#maxPayloadBytes = checkInteger(
      'maxPayloadBytes',
      options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
      2,
    );
    this.#maxKeyBytes = checkInteger(
      'maxKeyBytes',
      options.maxKeyBytes ?? DEFAULT_MAX_KEY_BYTES,
      1,
    );
    this.name = options.name;
    this.#internals = {
      name: options.name,
      backend:
        options.backend ??
        new MemoryBackend(options.clock === undefined ? {} : { clock: options.clock }),
      retry: resolveRetry(options.retry),
      leaseMs,
      keepCompleted: resolveKeepCompleted(options.keepCompleted),
      logger: options.logger ?? silentLogger,
      clock: options.clock ?? systemClock,
      random: options.random ?? Math.random,
      events: {
        completed: new EventSource(),
        failed: new EventSource(),
        dead: new EventSource(),
        stalled: new EventSource(),
        leaseLost: new EventSource(),
        error: new EventSource(),
      },
      workers: new Set(),
    };
    const { backend, name } = this.#internals;
    this.deadLetters = {
      list: async (options) => {
        const { offset = 0, limit = 100 } = checkOptions('deadLetters.list options', options);
        checkInteger('offset', offset, 0);
        checkInteger('limit', limit, 1, 10_000);
        const records = await backend.listDead(name, offset, limit);
        return records.map((record) => parseRecord<typeof record, T>(record));
      },
      retry: async (id: string) => {
        const runId = await backend.retryDead(name, id);
        if (runId === null)
          throw new SyncQueueError('JOB_NOT_FOUND', `No dead letter with id ${id}.`, { jobId: id });
        this.#notify();
        return runId;
      },
      purge: () => backend.purgeDead(name),
    };
    this.completed = {
      list: async (options) => {
        const { offset = 0, limit = 100 } = checkOptions('completed.list options', options);
        checkInteger('offset', offset, 0);
        checkInteger('limit', limit, 1, 10_000);
        const records = await backend.listCompleted(name, offset, limit);
        return records.map((record) => parseRecord<typeof record, T>(record));
      },
    };
  }

  /** Stores one job; resolves once it is durably stored. */
  async add(payload: T, options: AddOptions = {}): Promise<AddResult> {
    const [result] = await this.addBulk([{ ...options, payload }]);
    return result as AddResult;
  }

  /** Stores many jobs in one backend call; every item is validated before any is stored. */
  async addBulk(items: readonly BulkItem<T>[]): Promise<AddResult[]> {
    if (this.#closed) throw new SyncQueueError('QUEUE_CLOSED', 'The queue is closed.');
    const list: unknown = items;
    if (!Array.isArray(list))
      throw new SyncQueueError('INVALID_OPTIONS', 'addBulk takes an array.');
    for (const item of items) {
      if (typeof item !== 'object' || item === null)
        throw new SyncQueueError('INVALID_OPTIONS', 'Each addBulk item must be an object.');
    }
    const jobs: NewJob[] = items.map((item) => ({
      key: checkKey(item.key, this.#maxKeyBytes),
      payload: serialisePayload(item.payload, this.#maxPayloadBytes),
      delayMs: Math.round(checkNumber('delayMs', item.delayMs ?? 0, 0, MAX_DELAY_MS)),
      maxAttempts: checkInteger(
        'attempts',
        item.attempts ?? this.#internals.retry.maxAttempts,
        1,
        1_000_000,
      ),
    }));
    if (jobs.length === 0) return [];
    const results = await this.#internals.backend.add(this.name, jobs);
    this.#notify();
    return results;
  }

  /** Starts a worker that runs `handler` for each job. */
  process(handler: Handler<T>, processOptions?: ProcessOptions): Worker {
    if (this.#closed) throw new SyncQueueError('QUEUE_CLOSED', 'The queue is closed.');
    if (typeof handler !== 'function')
      throw new SyncQueueError('INVALID_OPTIONS', 'handler must be a function.');
    const options = checkOptions('process options', processOptions);
    const worker = new QueueWorker(this.#internals, handler, {
      concurrency: checkInteger('concurrency', options.concurrency ?? 1, 1, 10_000),
      pollIntervalMs: checkInteger(
        'pollIntervalMs',
        options.pollIntervalMs ?? 100,
        1,
        MAX_TIMER_MS,
      ),
      timeoutMs: checkInteger('timeoutMs', options.timeoutMs ?? 600_000, 1, MAX_TIMER_MS),
    });
    this.#internals.workers.add(worker);
    return worker;
  }

  /** Counts jobs by state. */
  stats(): Promise<QueueStats> {
    return this.#internals.backend.stats(this.name);
  }

  /**
   * Closes every worker of this queue (see Worker.close) and refuses later adds. Rejects with
   * INVALID_OPTIONS, closing nothing, for the options Worker.close refuses, workers or none.
   */
  async close(options?: CloseOptions): Promise<void> {
    const timeoutMs = closeTimeoutMs(options);
    this.#closed = true;
    await Promise.all([...this.#internals.workers].map((worker) => worker.close({ timeoutMs })));
  }

  /** A job completed. */
  onCompleted(listener: (event: CompletedEvent<T>) => void): Disposable {
    return this.#internals.events.completed.subscribe(listener);
  }
  /** A run failed (it will be retried, or `retryInMs` is null and it is dead). */
  onFailed(listener: (event: FailedEvent<T>) => void): Disposable {
    return this.#internals.events.failed.subscribe(listener);
  }
  /** A job went to the dead letters. */
  onDead(listener: (event: DeadEvent<T>) => void): Disposable {
    return this.#internals.events.dead.subscribe(listener);
  }
  /** A job's lease expired (its worker died or stalled) and it went back to waiting. */
  onStalled(listener: (event: StalledEvent) => void): Disposable {
    return this.#internals.events.stalled.subscribe(listener);
  }
  /** A run lost its lease; its result was refused and another run owns the job. */
  onLeaseLost(listener: (event: LeaseLostEvent<T>) => void): Disposable {
    return this.#internals.events.leaseLost.subscribe(listener);
  }
  /** A backend call failed; workers retry on their own. */
  onError(listener: (event: ErrorEvent) => void): Disposable {
    return this.#internals.events.error.subscribe(listener);
  }

  #notify(): void {
    for (const worker of this.#internals.workers) worker.wake();
  }
}

interface Run<T> {
  readonly leased: LeasedJob;
  readonly controller: AbortController;
  job: Job<T> | null;
  leaseDeadline: number;
  abandoned: boolean;
}

interface PendingCompletion {
  readonly leased: LeasedJob;
  readonly wantsNext: boolean;
  readonly resolve: (value: { result: FencedResult; next: LeasedJob | null }) => void;
  readonly reject: (error: unknown) => void;
}

interface WorkerSettings {
  readonly concurrency: number;
  readonly pollIntervalMs: number;
  readonly timeoutMs: number;
}

class QueueWorker<T> implements Worker {
  readonly #internals: Internals<T>;
  readonly #handler: Handler<T>;
  readonly #settings: WorkerSettings;
  readonly #runs = new Set<Run<T>>();
  readonly #loop: Promise<void>;
  #idle: number;
  #closed = false;
  #wake: (() => void) | null = null;
  #lastClaimAt: number | null = null;
  #completions: PendingCompletion[] = [];
  readonly #slots = new Set<Promise<void>>();
  /** When the backend call that leased each job was sent: its lease runs from no earlier. */
  readonly #leasedAt = new WeakMap<LeasedJob, number>();
  #flushScheduled = false;

  constructor(internals: Internals<T>, handler: Handler<T>, settings: WorkerSettings) {
    this.#internals = internals;
    this.#handler = handler;
    this.#settings = settings;
    this.#idle = settings.concurrency;
    this.#loop = this.#claimLoop();
  }

  get lastClaimAt(): number | null {
    return this.#lastClaimAt;
  }
  get active(): number {
    return this.#runs.size;
  }
  get closed(): boolean {
    return this.#closed;
  }

  wake(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = null;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  #emitError(error: unknown): void {
    const asError = toError(error);
    this.#internals.logger.error(
      { err: asError, queue: this.#internals.name },
      'sync-queue backend call failed',
    );
    this.#internals.events.error.emit({ error: asError });
  }

  async #claimLoop(): Promise<void> {
    const { backend, name, leaseMs } = this.#internals;
    let errorDelayMs = this.#settings.pollIntervalMs;
    while (!this.#closed) {
      if (this.#idle === 0) {
        await this.#pause(this.#settings.pollIntervalMs);
        continue;
      }
      let result: ClaimResult;
      const askedAt = this.#internals.clock.now();
      try {
        result = await backend.claim(name, this.#idle, leaseMs);
      } catch (error) {
        // A failed claim (Redis restarting, failing over) never ends the loop: back off and try again.
        this.#emitError(error);
        await this.#pause(errorDelayMs);
        errorDelayMs = Math.min(errorDelayMs * 2, 5_000);
        continue;
      }
      errorDelayMs = this.#settings.pollIntervalMs;
      this.#lastClaimAt = this.#internals.clock.now();
      this.#reportReclaims(result);
      for (const leased of result.jobs) {
        this.#leasedAt.set(leased, askedAt);
        this.#startSlot(leased);
      }
      if (result.jobs.length === 0 && !this.#closed) {
        const due = result.nextDueInMs ?? this.#settings.pollIntervalMs;
        await this.#pause(Math.max(1, Math.min(this.#settings.pollIntervalMs, due)));
      }
    }
  }

  #reportReclaims(result: ClaimResult): void {
    const { events, logger, name } = this.#internals;
    for (const id of result.stalled) {
      logger.warn(
        { queue: name, jobId: id },
        'sync-queue job lease expired; job returned to waiting',
      );
      events.stalled.emit({ id });
    }
    // Parsing payloads only feeds listeners: skip it when nobody listens.
    if (result.dead.length === 0 || !events.dead.listening) return;
    const expired = new Map((result.deadJobs ?? []).map((record) => [record.id, record]));
    for (const id of result.dead) {
      const record = expired.get(id);
      const error = new SyncQueueError('LEASE_LOST', 'Lease expired on the last attempt.', {
        jobId: id,
        ...(record === undefined ? {} : { attempts: record.attempt }),
      });
      if (record === undefined) {
        events.dead.emit({ id, error });
        continue;
      }
      let payload: T;
      try {
        payload = parsePayload<T>(record.payload);
      } catch {
        // As for a job whose handler never ran because of its payload: the job, payload undefined.
        payload = undefined as T;
      }
      events.dead.emit({ id, error, job: toJob(record, payload) });
    }
  }

  #startSlot(leased: LeasedJob): void {
    this.#idle -= 1;
    const slot = this.#slot(leased).finally(() => this.#slots.delete(slot));
    this.#slots.add(slot);
  }

  async #slot(first: LeasedJob): Promise<void> {
    let current: LeasedJob | null = first;
    try {
      while (current !== null) {
        if (this.#closed) {
          await this.#release(current);
          break;
        }
        current = await this.#execute(current);
      }
    } catch (error) {
      // A bug in a user hook (say a `random` that throws) must neither become an unhandled
      // rejection nor cost the worker a slot; the job's lease expires and it runs again.
      this.#emitError(error);
    } finally {
      this.#idle += 1;
      this.wake();
    }
  }

  async #release(leased: LeasedJob): Promise<void> {
    try {
      await this.#internals.backend.release(this.#internals.name, leased.id, leased.token);
    } catch (error) {
      // The lease will expire and any worker will reclaim the job: nothing is lost.
      this.#emitError(error);
    }
  }

  /** Runs one job and reports its outcome; returns the next job leased in the same backend call, if any. */
  async #execute(leased: LeasedJob): Promise<LeasedJob | null> {
    const { leaseMs, clock, events } = this.#internals;
    const run: Run<T> = {
      leased,
      controller: new AbortController(),
      job: null,
      leaseDeadline: (this.#leasedAt.get(leased) ?? clock.now()) + leaseMs,
      abandoned: false,
    };
    this.#runs.add(run);
    try {
      let job: Job<T>;
      try {
        job = toJob(leased, parsePayload<T>(leased.payload));
      } catch (error) {
        const placeholder = toJob(leased, undefined as T);
        return await this.#reportFailure(
          run,
          placeholder,
          new PermanentError('Stored payload is not valid JSON.', { cause: error }),
        );
      }
      run.job = job;
      const outcome = await this.#runHandler(run, job);
      if (run.abandoned) return null;
      if (
        run.controller.signal.aborted &&
        SyncQueueError.isInstance(run.controller.signal.reason) &&
        run.controller.signal.reason.code === 'LEASE_LOST'
      ) {
        events.leaseLost.emit({ job });
        return null;
      }
      if (outcome.ok) {
        const reply = await this.#persist(run, () => this.#complete(leased, !this.#closed));
        if (reply === undefined) return null;
        if (run.abandoned) {
          // close() gave up on this run while its completion was in flight; the job that the
          // completion leased for this slot would otherwise stay leased to nobody until it expires.
          if (reply.next !== null) await this.#release(reply.next);
          return null;
        }
        if (reply.result === 'stale') {
          events.leaseLost.emit({ job });
        } else {
          events.completed.emit({ job });
        }
        return reply.next;
      }
      return await this.#reportFailure(run, job, outcome.error);
    } finally {
      this.#runs.delete(run);
    }
  }

  /**
   * Completes a run. Completions that arrive in the same turn of the event loop go to the
   * backend in one call, which also claims one next job for each run that wants one: under
   * load that is one Redis round trip for many jobs instead of one each.
   */
  #complete(
    leased: LeasedJob,
    wantsNext: boolean,
  ): Promise<{ result: FencedResult; next: LeasedJob | null }> {
    return new Promise((resolve, reject) => {
      this.#completions.push({ leased, wantsNext, resolve, reject });
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        // With one slot there is nothing to wait for; with more, give sibling runs one turn to join.
        if (this.#settings.concurrency === 1) queueMicrotask(() => void this.#flushCompletions());
        else setImmediate(() => void this.#flushCompletions());
      }
    });
  }

  async #flushCompletions(): Promise<void> {
    this.#flushScheduled = false;
    const batch = this.#completions.splice(0);
    const { backend, name, leaseMs, clock, keepCompleted } = this.#internals;
    const fetch = this.#closed ? 0 : batch.filter((pending) => pending.wantsNext).length;
    let reply: CompleteResult;
    const askedAt = clock.now();
    try {
      reply = await backend.complete(
        name,
        batch.map((pending) => ({ id: pending.leased.id, token: pending.leased.token })),
        fetch,
        leaseMs,
        keepCompleted,
      );
    } catch (error) {
      for (const pending of batch) pending.reject(error);
      return;
    }
    const jobs = reply.next?.jobs.slice() ?? [];
    for (const leased of jobs) this.#leasedAt.set(leased, askedAt);
    if (reply.next !== null) {
      this.#reportReclaims(reply.next);
      this.#lastClaimAt = clock.now();
    }
    batch.forEach((pending, index) => {
      pending.resolve({
        result: reply.results[index] ?? 'stale',
        next: pending.wantsNext ? (jobs.shift() ?? null) : null,
      });
    });
    for (const extra of jobs) this.#startSlot(extra);
  }

  async #runHandler(run: Run<T>, job: Job<T>): Promise<{ ok: true } | { ok: false; error: Error }> {
    const { backend, name, leaseMs, clock } = this.#internals;
    const { controller } = run;
    const leaseLost = (): void => {
      if (controller.signal.aborted) return;
      controller.abort(
        new SyncQueueError('LEASE_LOST', `Lease of job ${job.id} was lost.`, { jobId: job.id }),
      );
    };
    // Renewals that keep failing (the backend unreachable from this process only) must not let
    // the handler outlive its lease: past it, another worker may already be running the job.
    let watchdog: ReturnType<typeof setTimeout> | undefined;
    const watch = (): void => {
      clearTimeout(watchdog);
      watchdog = setTimeout(
        () => (clock.now() >= run.leaseDeadline ? leaseLost() : watch()),
        Math.min(MAX_TIMER_MS, Math.max(1, run.leaseDeadline - clock.now())),
      );
    };
    watch();
    // Renewing at half the lease means one slow or lost renewal never loses the job.
    const renewal = setInterval(
      () => {
        // The new deadline counts from when the renewal was sent, as the backend's may.
        const sentAt = clock.now();
        Promise.resolve()
          .then(() => backend.extend(name, job.id, run.leased.token, leaseMs))
          .then(
            (result) => {
              if (result !== 'ok') {
                leaseLost();
              } else if (!controller.signal.aborted) {
                run.leaseDeadline = Math.max(run.leaseDeadline, sentAt + leaseMs);
                watch();
              }
            },
            (error: unknown) => this.#emitError(error),
          );
      },
      Math.max(1, Math.floor(leaseMs / 2)),
    );
    const timeout = setTimeout(() => {
      controller.abort(
        new SyncQueueError(
          'HANDLER_TIMEOUT',
          `Handler ran longer than ${this.#settings.timeoutMs} ms.`,
          { jobId: job.id },
        ),
      );
    }, this.#settings.timeoutMs);
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<{ ok: false; error: Error }>((resolve) => {
      onAbort = () => resolve({ ok: false, error: toError(controller.signal.reason) });
      controller.signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const handled = Promise.resolve()
        .then(() => this.#handler(job, { signal: controller.signal }))
        .then(
          () => ({ ok: true }) as const,
          (error: unknown) => ({ ok: false, error: toError(error) }) as const,
        );
      return await Promise.race([handled, aborted]);
    } finally {
      clearInterval(renewal);
      clearTimeout(watchdog);
      clearTimeout(timeout);
      if (onAbort !== undefined) controller.signal.removeEventListener('abort', onAbort);
    }
  }

  async #reportFailure(run: Run<T>, job: Job<T>, error: Error): Promise<null> {
    const { backend, name, retry, random, events } = this.#internals;
    const permanent = PermanentError.isInstance(error);
    let retryInMs: number | null = null;
    if (!permanent && run.leased.attempt < run.leased.maxAttempts) {
      const hinted = (error as { retryAfterMs?: unknown }).retryAfterMs;
      const delay =
        typeof hinted === 'number' && Number.isFinite(hinted) && hinted >= 0
          ? hinted
          : backoffDelay(retry, run.leased.attempt, random);
      // A backend must never get a delay it cannot schedule (NaN, negative, beyond any date).
      const finite = Number.isFinite(delay) ? delay : retry.maxDelayMs;
      retryInMs = Math.min(MAX_DELAY_MS, Math.max(0, Math.round(finite)));
    }
    const message = `${error.name}: ${error.message}`.slice(0, MAX_ERROR_CHARS);
    const result = await this.#persist(run, () =>
      backend.fail(name, job.id, run.leased.token, message, retryInMs),
    );
    if (result === undefined || run.abandoned) return null;
    if (result === 'stale') {
      events.leaseLost.emit({ job });
      return null;
    }
    events.failed.emit({ job, error, retryInMs: result === 'dead' ? null : retryInMs });
    if (result === 'dead') events.dead.emit({ id: job.id, error, job });
    return null;
  }

  /** Retries a backend call that reports a run's outcome while the run's lease lasts; undefined if it never got through. */
  async #persist<R>(run: Run<T>, call: () => Promise<R>): Promise<R | undefined> {
    let delayMs = 50;
    for (;;) {
      try {
        return await call();
      } catch (error) {
        this.#emitError(error);
        // Past the lease another worker owns the job, so the report would be refused anyway.
        if (run.abandoned || this.#internals.clock.now() + delayMs >= run.leaseDeadline)
          return undefined;
        await sleep(delayMs);
        delayMs = Math.min(delayMs * 2, 1_000);
      }
    }
  }

  async close(options?: CloseOptions): Promise<void> {
    const timeoutMs = closeTimeoutMs(options);
    if (!this.#closed) {
      this.#closed = true;
      this.wake();
    }
    // Slots end only after their job is completed, failed or released, including a job that a
    // completion fetched while the close began, so waiting on slots waits on every lease.
    await this.#within(timeoutMs, Promise.all([this.#loop, ...this.#slots]));
    const unfinished = [...this.#runs];
    for (const run of unfinished) {
      run.abandoned = true;
      run.controller.abort(
        new SyncQueueError('QUEUE_CLOSED', 'The worker closed before the handler finished.', {
          jobId: run.leased.id,
        }),
      );
    }
    // Aborted runs report nothing, so their slots end at once unless a backend call is stuck.
    await this.#within(
      Math.min(timeoutMs, 1_000),
      Promise.all([...unfinished.map((run) => this.#release(run.leased)), ...this.#slots]),
    );
    this.#internals.workers.delete(this);
  }

  async #within(ms: number, work: Promise<unknown>): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    // Past 2^31-1 ms setTimeout would fire at once; ~24.8 days is as good as "wait for ever".
    const wait = Math.min(ms, MAX_TIMER_MS);
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, wait)));
    try {
      await Promise.race([work, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }
}
