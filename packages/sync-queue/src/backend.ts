/** A job as handed to the backend by `add`: the payload is already serialised. */
export interface NewJob {
  /** Coalescing key, or null for a job that never coalesces. */
  readonly key: string | null;
  /** JSON text of the payload. */
  readonly payload: string;
  /** Delay before the job may run, in ms. */
  readonly delayMs: number;
  /** Attempts allowed before the job is dead-lettered. */
  readonly maxAttempts: number;
}

/** What `add` did with one job. */
export interface AddResult {
  /** Id of the stored job (the existing job's id when it coalesced). */
  readonly id: string;
  /** True when the payload replaced the payload of a job already waiting on the same key. */
  readonly coalesced: boolean;
}

/** A job leased to a worker. */
export interface LeasedJob {
  readonly id: string;
  readonly key: string | null;
  readonly payload: string;
  /** 1 on the first run, 2 on the first retry, ... */
  readonly attempt: number;
  readonly maxAttempts: number;
  /** Fencing token: every later state change of this run must present it. */
  readonly token: string;
  /** When the job was first stored, in ms since the epoch. */
  readonly createdAt: number;
}

/** The outcome of one claim call. */
export interface ClaimResult {
  /** Jobs now leased to the caller. */
  readonly jobs: LeasedJob[];
  /** Ids of jobs whose lease had expired and that went back to waiting. */
  readonly stalled: string[];
  /** Ids of jobs whose lease expired on their last attempt and that were dead-lettered. */
  readonly dead: string[];
  /** Time until the next delayed job is due, in ms, or null when nothing is scheduled. */
  readonly nextDueInMs: number | null;
  /**
   * The jobs of `dead` as their last run saw them, so the `dead` event can carry `job`. Optional
   * for backends written before it existed: without it the event has the id only. A backend that
   * returns it lists every id of `dead`, in any order.
   */
  readonly deadJobs?: ExpiredJob[];
}

/** A job a claim dead-lettered because the lease of its last attempt expired: the run that was lost. */
export interface ExpiredJob {
  readonly id: string;
  readonly key: string | null;
  /** JSON text of the payload. */
  readonly payload: string;
  /** The attempt whose lease expired. */
  readonly attempt: number;
  readonly maxAttempts: number;
  /** When the job was first stored, in ms since the epoch. */
  readonly createdAt: number;
}

/** Counts of jobs by state. */
export interface QueueStats {
  /** Ready to run now, or waiting for their key to be free. */
  readonly waiting: number;
  /** Scheduled for later (delayed or backing off). */
  readonly delayed: number;
  /** Leased to a worker. */
  readonly active: number;
  /** In the dead letters. */
  readonly dead: number;
  /** Completed jobs kept for inspection (0 unless the queue keeps completed jobs). */
  readonly completed: number;
}

/**
 * Which completed jobs a backend keeps: at most `count` of the latest, and of those only the ones
 * completed less than `ageMs` ago. `count` 0 keeps none (and trims any kept earlier).
 */
export interface CompletedRetention {
  /** Most completed jobs kept; 0 keeps none. */
  readonly count: number;
  /** Oldest completion kept, in ms before now, or null for no age limit. */
  readonly ageMs: number | null;
}

/** A completed job kept for inspection. */
export interface CompletedRecord {
  readonly id: string;
  readonly key: string | null;
  readonly payload: string;
  /** Runs made, the successful one included. */
  readonly attempts: number;
  /** When the job was first stored, in ms since the epoch. */
  readonly createdAt: number;
  /** When it completed, in ms since the epoch. */
  readonly completedAt: number;
}

/** A dead-lettered job. */
export interface DeadLetterRecord {
  readonly id: string;
  readonly key: string | null;
  readonly payload: string;
  /** Runs made before the job was dead-lettered. */
  readonly attempts: number;
  /** Message of the last error. */
  readonly lastError: string;
  /** When it was dead-lettered, in ms since the epoch. */
  readonly failedAt: number;
}

/** Result of a state change guarded by a fencing token. */
export type FencedResult = 'ok' | 'stale';

/** A run of a job: the job id and the fencing token of its lease. */
export interface RunRef {
  readonly id: string;
  readonly token: string;
}

/** Result of `complete`. */
export interface CompleteResult {
  /** One result per run given, in order. */
  readonly results: FencedResult[];
  /** Jobs claimed in the same step, or null when none were asked for. */
  readonly next: ClaimResult | null;
}

/** Result of a failure report. */
export type FailResult = 'retried' | 'dead' | 'stale';

/**
 * Storage of jobs. Every method is one atomic step: implementations must never expose a state
 * between two of these steps. Run the contract suite from `@postern/sync-queue/testing` against
 * a new implementation.
 */
export interface QueueBackend {
  /** Stores jobs; resolves only once they are durable. */
  add(queue: string, jobs: readonly NewJob[]): Promise<AddResult[]>;
  /** Reclaims expired leases, then leases up to `count` runnable jobs for `leaseMs`. */
  claim(queue: string, count: number, leaseMs: number): Promise<ClaimResult>;
  /** Extends a live lease; 'stale' when the token no longer owns the job or its lease expired. */
  extend(queue: string, id: string, token: string, leaseMs: number): Promise<FencedResult>;
  /**
   * Removes finished jobs and frees their keys, each only if its token still holds a live lease
   * (one result per run, in order). With `fetch > 0` it also claims up to that many jobs in the
   * same step (`next` is null when fetch is 0). With `keep` (count > 0) the completed jobs are kept
   * as completed records instead of deleted; in every case the completed records are trimmed to
   * `keep` (none when it is absent) in the same step, so their number stays bounded.
   */
  complete(
    queue: string,
    runs: readonly RunRef[],
    fetch: number,
    leaseMs: number,
    keep?: CompletedRetention,
  ): Promise<CompleteResult>;
  /** Records a failed run: retry after `retryInMs` (the key stays owned) or, when null, dead-letter it. */
  fail(
    queue: string,
    id: string,
    token: string,
    error: string,
    retryInMs: number | null,
  ): Promise<FailResult>;
  /** Returns a leased job to waiting without counting the run (used by a graceful close). */
  release(queue: string, id: string, token: string): Promise<FencedResult>;
  stats(queue: string): Promise<QueueStats>;
  listDead(queue: string, offset: number, limit: number): Promise<DeadLetterRecord[]>;
  /** Lists kept completed jobs, latest completion first. */
  listCompleted(queue: string, offset: number, limit: number): Promise<CompletedRecord[]>;
  /** Moves a dead letter back to waiting with fresh attempts; returns the id that will run, or null if not found. */
  retryDead(queue: string, id: string): Promise<string | null>;
  /** Deletes every dead letter; returns how many. */
  purgeDead(queue: string): Promise<number>;
}
