import type {
  AddResult,
  ClaimResult,
  CompleteResult,
  CompletedRecord,
  CompletedRetention,
  DeadLetterRecord,
  ExpiredJob,
  FailResult,
  FencedResult,
  LeasedJob,
  NewJob,
  QueueBackend,
  QueueStats,
  RunRef,
} from './backend.js';
import { SyncQueueError } from './errors.js';
import type { Clock } from './ports.js';
import { systemClock } from './ports.js';

interface StoredJob {
  id: string;
  key: string | null;
  payload: string;
  attempt: number;
  maxAttempts: number;
  createdAt: number;
  runAt: number;
  token: string;
  lastError: string;
  failedAt: number;
  completedAt: number;
}

/** A due-time entry of the ready heap; stale once `ready` no longer maps its id to its runAt. */
interface ReadyEntry {
  readonly runAt: number;
  /** Numeric job id: among jobs due at once, the older job runs first. */
  readonly order: number;
  readonly id: string;
}

function before(a: ReadyEntry, b: ReadyEntry): boolean {
  return a.runAt < b.runAt || (a.runAt === b.runAt && a.order < b.order);
}

/**
 * Binary min-heap of ready jobs by (runAt, id), so a claim takes the due jobs in O(k log n)
 * instead of sorting every ready job on each claim.
 */
class ReadyHeap {
  readonly #items: ReadyEntry[] = [];

  push(entry: ReadyEntry): void {
    const items = this.#items;
    items.push(entry);
    let index = items.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      const above = items[parent] as ReadyEntry;
      if (!before(entry, above)) break;
      items[index] = above;
      index = parent;
    }
    items[index] = entry;
  }

  peek(): ReadyEntry | undefined {
    return this.#items[0];
  }

  pop(): void {
    const items = this.#items;
    const last = items.pop();
    if (last === undefined || items.length === 0) return;
    let index = 0;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const child =
        right < items.length && before(items[right] as ReadyEntry, items[left] as ReadyEntry)
          ? right
          : left;
      const below = items[child] as ReadyEntry;
      if (!before(below, last)) break;
      items[index] = below;
      index = child;
    }
    items[index] = last;
  }
}

interface QueueState {
  jobs: Map<string, StoredJob>;
  /** Waiting and delayed jobs: id -> runAt. */
  ready: Map<string, number>;
  /** The same jobs ordered by (runAt, id); entries that no longer match `ready` are skipped. */
  heap: ReadyHeap;
  /** Leased jobs: id -> lease deadline. */
  active: Map<string, number>;
  /** Dead letters: id -> failedAt (insertion order is failure order). */
  dead: Map<string, number>;
  /** Kept completed jobs: id -> completedAt (insertion order is completion order). */
  completed: Map<string, number>;
  /** Jobs waiting for their key's owner to finish. */
  blocked: Set<string>;
  /** key -> id of the job in the key's single pending slot. */
  pending: Map<string, string>;
  /** key -> id of the job that owns the key (running or backing off). */
  owner: Map<string, string>;
  seq: number;
}

/** Options of MemoryBackend. */
export interface MemoryBackendOptions {
  /** Source of time for delays and leases. Default: the system clock. */
  clock?: Clock;
}

const STALE_SCAN_LIMIT = 100;

/**
 * Keeps queues in this process's memory with the same semantics as the Redis backend.
 * Nothing survives a restart: use it for tests and single-process tools.
 */
export class MemoryBackend implements QueueBackend {
  readonly #clock: Clock;
  readonly #queues = new Map<string, QueueState>();

  constructor(options: MemoryBackendOptions = {}) {
    this.#clock = options.clock ?? systemClock;
  }

  #state(queue: string): QueueState {
    let state = this.#queues.get(queue);
    if (state === undefined) {
      state = {
        jobs: new Map(),
        ready: new Map(),
        heap: new ReadyHeap(),
        active: new Map(),
        dead: new Map(),
        completed: new Map(),
        blocked: new Set(),
        pending: new Map(),
        owner: new Map(),
        seq: 0,
      };
      this.#queues.set(queue, state);
    }
    return state;
  }

  add(queue: string, jobs: readonly NewJob[]): Promise<AddResult[]> {
    const state = this.#state(queue);
    const now = this.#clock.now();
    const results: AddResult[] = [];
    for (const job of jobs) {
      if (job.key !== null) {
        const pendingId = state.pending.get(job.key);
        const pendingJob =
          pendingId === undefined || !this.#unfinished(state, pendingId)
            ? undefined
            : state.jobs.get(pendingId);
        if (pendingJob !== undefined) {
          pendingJob.payload = job.payload;
          pendingJob.maxAttempts = job.maxAttempts;
          results.push({ id: pendingJob.id, coalesced: true });
          continue;
        }
      }
      state.seq += 1;
      const id = String(state.seq);
      const stored: StoredJob = {
        id,
        key: job.key,
        payload: job.payload,
        attempt: 0,
        maxAttempts: job.maxAttempts,
        createdAt: now,
        runAt: now + job.delayMs,
        token: '',
        lastError: '',
        failedAt: 0,
        completedAt: 0,
      };
      state.jobs.set(id, stored);
      this.#enqueueKeyed(state, stored);
      results.push({ id, coalesced: false });
    }
    return Promise.resolve(results);
  }

  /** True when the job exists and has not completed (a kept completed job owns no key and absorbs no change). */
  #unfinished(state: QueueState, id: string): boolean {
    return state.jobs.has(id) && !state.completed.has(id);
  }

  #setReady(state: QueueState, id: string, runAt: number): void {
    state.ready.set(id, runAt);
    state.heap.push({ runAt, order: Number(id), id });
  }

  /** The earliest ready entry, dropping heap entries that no longer match the ready map. */
  #firstReady(state: QueueState): ReadyEntry | undefined {
    for (let top = state.heap.peek(); top !== undefined; top = state.heap.peek()) {
      if (state.ready.get(top.id) === top.runAt) return top;
      state.heap.pop();
    }
    return undefined;
  }

  /** Puts a job that is not running into its key's pending slot (blocked while the key is owned) or the ready set. */
  #enqueueKeyed(state: QueueState, job: StoredJob): void {
    if (job.key === null) {
      this.#setReady(state, job.id, job.runAt);
      return;
    }
    state.pending.set(job.key, job.id);
    const owner = state.owner.get(job.key);
    if (owner !== undefined && owner !== job.id && this.#unfinished(state, owner)) {
      state.blocked.add(job.id);
    } else {
      if (owner !== undefined) state.owner.delete(job.key);
      this.#setReady(state, job.id, job.runAt);
    }
  }

  #releaseKey(state: QueueState, job: StoredJob, now: number): void {
    if (job.key === null || state.owner.get(job.key) !== job.id) return;
    state.owner.delete(job.key);
    const pendingId = state.pending.get(job.key);
    if (pendingId !== undefined && state.blocked.delete(pendingId)) {
      const pendingJob = state.jobs.get(pendingId);
      if (pendingJob !== undefined)
        this.#setReady(state, pendingId, Math.max(now, pendingJob.runAt));
    }
  }

  #toDead(state: QueueState, job: StoredJob, error: string, now: number): void {
    job.token = '';
    job.lastError = error;
    job.failedAt = now;
    state.dead.set(job.id, now);
    this.#releaseKey(state, job, now);
  }

  #claim(state: QueueState, count: number, leaseMs: number, now: number): ClaimResult {
    const stalled: string[] = [];
    const dead: string[] = [];
    const deadJobs: ExpiredJob[] = [];
    for (const [id, deadline] of [...state.active].slice(0)) {
      if (stalled.length + dead.length >= STALE_SCAN_LIMIT) break;
      if (deadline > now) continue;
      state.active.delete(id);
      const job = state.jobs.get(id);
      if (job === undefined) continue;
      if (job.attempt >= job.maxAttempts) {
        this.#toDead(state, job, `lease expired on attempt ${job.attempt}`, now);
        dead.push(id);
        deadJobs.push({
          id,
          key: job.key,
          payload: job.payload,
          attempt: job.attempt,
          maxAttempts: job.maxAttempts,
          createdAt: job.createdAt,
        });
      } else {
        job.token = '';
        job.runAt = now;
        this.#setReady(state, id, now);
        stalled.push(id);
      }
    }
    const jobs: LeasedJob[] = [];
    while (jobs.length < count) {
      const top = this.#firstReady(state);
      if (top === undefined || top.runAt > now) break;
      state.heap.pop();
      const { id } = top;
      state.ready.delete(id);
      const job = state.jobs.get(id);
      if (job === undefined) continue;
      state.seq += 1;
      job.token = String(state.seq);
      job.attempt += 1;
      state.active.set(id, now + leaseMs);
      if (job.key !== null) {
        if (state.pending.get(job.key) === id) state.pending.delete(job.key);
        state.owner.set(job.key, id);
      }
      jobs.push({
        id,
        key: job.key,
        payload: job.payload,
        attempt: job.attempt,
        maxAttempts: job.maxAttempts,
        token: job.token,
        createdAt: job.createdAt,
      });
    }
    let nextDueInMs: number | null = null;
    if (jobs.length < count) {
      const first = this.#firstReady(state);
      if (first !== undefined) nextDueInMs = Math.max(0, first.runAt - now);
    }
    return { jobs, stalled, dead, nextDueInMs, deadJobs };
  }

  /** The job if `token` holds a live lease on it. */
  #fenced(state: QueueState, id: string, token: string, now: number): StoredJob | undefined {
    const job = state.jobs.get(id);
    const deadline = state.active.get(id);
    if (
      job === undefined ||
      deadline === undefined ||
      token === '' ||
      job.token !== token ||
      deadline <= now
    ) {
      return undefined;
    }
    return job;
  }

  claim(queue: string, count: number, leaseMs: number): Promise<ClaimResult> {
    return Promise.resolve(this.#claim(this.#state(queue), count, leaseMs, this.#clock.now()));
  }

  extend(queue: string, id: string, token: string, leaseMs: number): Promise<FencedResult> {
    const state = this.#state(queue);
    const now = this.#clock.now();
    if (this.#fenced(state, id, token, now) === undefined) return Promise.resolve('stale');
    state.active.set(id, now + leaseMs);
    return Promise.resolve('ok');
  }

  complete(
    queue: string,
    runs: readonly RunRef[],
    fetch: number,
    leaseMs: number,
    keep?: CompletedRetention,
  ): Promise<CompleteResult> {
    const state = this.#state(queue);
    const now = this.#clock.now();
    const keepCount = keep?.count ?? 0;
    const results = runs.map(({ id, token }): FencedResult => {
      const job = this.#fenced(state, id, token, now);
      if (job === undefined) return 'stale';
      state.active.delete(id);
      if (keepCount > 0) {
        job.token = '';
        job.completedAt = now;
        state.completed.set(id, now);
      } else {
        state.jobs.delete(id);
      }
      this.#releaseKey(state, job, now);
      return 'ok';
    });
    this.#trimCompleted(state, keepCount, keep?.ageMs ?? null, now);
    const next = fetch > 0 ? this.#claim(state, fetch, leaseMs, now) : null;
    return Promise.resolve({ results, next });
  }

  /** Drops kept completed jobs past the retention: those `ageMs` or older, then the oldest beyond `count`. */
  #trimCompleted(state: QueueState, count: number, ageMs: number | null, now: number): void {
    for (const [id, completedAt] of state.completed) {
      if (state.completed.size <= count && (ageMs === null || now - completedAt < ageMs)) break;
      state.completed.delete(id);
      state.jobs.delete(id);
    }
  }

  fail(
    queue: string,
    id: string,
    token: string,
    error: string,
    retryInMs: number | null,
  ): Promise<FailResult> {
    if (retryInMs !== null && !(Number.isFinite(retryInMs) && retryInMs >= 0)) {
      // As on Redis: a delay that cannot be scheduled would leave the job due never.
      return Promise.reject(
        new SyncQueueError(
          'INVALID_OPTIONS',
          `sync-queue: retry delay must be a finite number >= 0; got ${String(retryInMs)}.`,
        ),
      );
    }
    const state = this.#state(queue);
    const now = this.#clock.now();
    const job = this.#fenced(state, id, token, now);
    if (job === undefined) return Promise.resolve('stale');
    state.active.delete(id);
    if (retryInMs === null) {
      this.#toDead(state, job, error, now);
      return Promise.resolve('dead');
    }
    job.token = '';
    job.lastError = error;
    job.runAt = now + retryInMs;
    this.#setReady(state, id, job.runAt);
    return Promise.resolve('retried');
  }

  release(queue: string, id: string, token: string): Promise<FencedResult> {
    const state = this.#state(queue);
    const now = this.#clock.now();
    const job = this.#fenced(state, id, token, now);
    if (job === undefined) return Promise.resolve('stale');
    state.active.delete(id);
    job.token = '';
    job.attempt = Math.max(0, job.attempt - 1);
    job.runAt = now;
    this.#setReady(state, id, now);
    return Promise.resolve('ok');
  }

  stats(queue: string): Promise<QueueStats> {
    const state = this.#state(queue);
    const now = this.#clock.now();
    let waiting = state.blocked.size;
    let delayed = 0;
    for (const runAt of state.ready.values()) {
      if (runAt <= now) waiting += 1;
      else delayed += 1;
    }
    return Promise.resolve({
      waiting,
      delayed,
      active: state.active.size,
      dead: state.dead.size,
      completed: state.completed.size,
    });
  }

  listCompleted(queue: string, offset: number, limit: number): Promise<CompletedRecord[]> {
    const state = this.#state(queue);
    const records: CompletedRecord[] = [];
    for (const id of [...state.completed.keys()].reverse().slice(offset, offset + limit)) {
      const job = state.jobs.get(id);
      if (job === undefined) continue;
      records.push({
        id,
        key: job.key,
        payload: job.payload,
        attempts: job.attempt,
        createdAt: job.createdAt,
        completedAt: job.completedAt,
      });
    }
    return Promise.resolve(records);
  }

  listDead(queue: string, offset: number, limit: number): Promise<DeadLetterRecord[]> {
    const state = this.#state(queue);
    const records: DeadLetterRecord[] = [];
    for (const id of [...state.dead.keys()].slice(offset, offset + limit)) {
      const job = state.jobs.get(id);
      if (job === undefined) continue;
      records.push({
        id,
        key: job.key,
        payload: job.payload,
        attempts: job.attempt,
        lastError: job.lastError,
        failedAt: job.failedAt,
      });
    }
    return Promise.resolve(records);
  }

  retryDead(queue: string, id: string): Promise<string | null> {
    const state = this.#state(queue);
    const job = state.jobs.get(id);
    if (!state.dead.delete(id) || job === undefined) return Promise.resolve(null);
    job.attempt = 0;
    job.token = '';
    job.lastError = '';
    job.runAt = this.#clock.now();
    if (job.key !== null) {
      const pendingId = state.pending.get(job.key);
      if (pendingId !== undefined && pendingId !== id && this.#unfinished(state, pendingId)) {
        // A newer change for the key is already waiting: it supersedes the dead one.
        state.jobs.delete(id);
        return Promise.resolve(pendingId);
      }
    }
    this.#enqueueKeyed(state, job);
    return Promise.resolve(id);
  }

  purgeDead(queue: string): Promise<number> {
    const state = this.#state(queue);
    const count = state.dead.size;
    for (const id of state.dead.keys()) state.jobs.delete(id);
    state.dead.clear();
    return Promise.resolve(count);
  }
}
