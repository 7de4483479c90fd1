import type {
  AddResult,
  ClaimResult,
  CompleteResult,
  DeadLetterRecord,
  FailResult,
  FencedResult,
  LeasedJob,
  NewJob,
  QueueBackend,
  QueueStats,
  RunRef,
} from './backend.js';
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
}

interface QueueState {
  jobs: Map<string, StoredJob>;
  /** Waiting and delayed jobs: id -> runAt. */
  ready: Map<string, number>;
  /** Leased jobs: id -> lease deadline. */
  active: Map<string, number>;
  /** Dead letters: id -> failedAt (insertion order is failure order). */
  dead: Map<string, number>;
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
        active: new Map(),
        dead: new Map(),
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
        const pendingJob = pendingId === undefined ? undefined : state.jobs.get(pendingId);
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
      };
      state.jobs.set(id, stored);
      this.#enqueueKeyed(state, stored);
      results.push({ id, coalesced: false });
    }
    return Promise.resolve(results);
  }

  /** Puts a job that is not running into its key's pending slot (blocked while the key is owned) or the ready set. */
  #enqueueKeyed(state: QueueState, job: StoredJob): void {
    if (job.key === null) {
      state.ready.set(job.id, job.runAt);
      return;
    }
    state.pending.set(job.key, job.id);
    const owner = state.owner.get(job.key);
    if (owner !== undefined && owner !== job.id && state.jobs.has(owner)) {
      state.blocked.add(job.id);
    } else {
      if (owner !== undefined) state.owner.delete(job.key);
      state.ready.set(job.id, job.runAt);
    }
  }

  #releaseKey(state: QueueState, job: StoredJob, now: number): void {
    if (job.key === null || state.owner.get(job.key) !== job.id) return;
    state.owner.delete(job.key);
    const pendingId = state.pending.get(job.key);
    if (pendingId !== undefined && state.blocked.delete(pendingId)) {
      const pendingJob = state.jobs.get(pendingId);
      if (pendingJob !== undefined) state.ready.set(pendingId, Math.max(now, pendingJob.runAt));
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
    for (const [id, deadline] of [...state.active].slice(0)) {
      if (stalled.length + dead.length >= STALE_SCAN_LIMIT) break;
      if (deadline > now) continue;
      state.active.delete(id);
      const job = state.jobs.get(id);
      if (job === undefined) continue;
      if (job.attempt >= job.maxAttempts) {
        this.#toDead(state, job, `lease expired on attempt ${job.attempt}`, now);
        dead.push(id);
      } else {
        job.token = '';
        job.runAt = now;
        state.ready.set(id, now);
        stalled.push(id);
      }
    }
    const due = [...state.ready].filter(([, runAt]) => runAt <= now).sort((a, b) => a[1] - b[1] || Number(a[0]) - Number(b[0]));
    const jobs: LeasedJob[] = [];
    for (const [id] of due.slice(0, count)) {
      const job = state.jobs.get(id);
      state.ready.delete(id);
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
      for (const runAt of state.ready.values()) {
        const inMs = Math.max(0, runAt - now);
        if (nextDueInMs === null || inMs < nextDueInMs) nextDueInMs = inMs;
      }
    }
    return { jobs, stalled, dead, nextDueInMs };
  }

  /** The job if `token` holds a live lease on it. */
  #fenced(state: QueueState, id: string, token: string, now: number): StoredJob | undefined {
    const job = state.jobs.get(id);
    const deadline = state.active.get(id);
    if (job === undefined || deadline === undefined || token === '' || job.token !== token || deadline <= now) {
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

  complete(queue: string, runs: readonly RunRef[], fetch: number, leaseMs: number): Promise<CompleteResult> {
    const state = this.#state(queue);
    const now = this.#clock.now();
    const results = runs.map(({ id, token }): FencedResult => {
      const job = this.#fenced(state, id, token, now);
      if (job === undefined) return 'stale';
      state.active.delete(id);
      state.jobs.delete(id);
      this.#releaseKey(state, job, now);
      return 'ok';
    });
    const next = fetch > 0 ? this.#claim(state, fetch, leaseMs, now) : null;
    return Promise.resolve({ results, next });
  }

  fail(queue: string, id: string, token: string, error: string, retryInMs: number | null): Promise<FailResult> {
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
    state.ready.set(id, job.runAt);
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
    state.ready.set(id, now);
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
    return Promise.resolve({ waiting, delayed, active: state.active.size, dead: state.dead.size });
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
      if (pendingId !== undefined && pendingId !== id && state.jobs.has(pendingId)) {
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
