// eslint-disable-next-line @typescript-eslint/triple-slash-reference -- keeps the *.lua declaration in view of compilations that list files (the README check)
/// <reference path="./lua.d.ts" />
import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
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
import type { Clock, Logger } from './ports.js';
import common from './lua/_common.lua';
import addScript from './lua/add-8.lua';
import claimScript from './lua/claim-8.lua';
import completeScript from './lua/complete-8.lua';
import completedListScript from './lua/completed-list-8.lua';
import deadListScript from './lua/dead-list-8.lua';
import deadPurgeScript from './lua/dead-purge-8.lua';
import deadRetryScript from './lua/dead-retry-8.lua';
import extendScript from './lua/extend-8.lua';
import failScript from './lua/fail-8.lua';
import releaseScript from './lua/release-8.lua';
import statsScript from './lua/stats-8.lua';

/** Options of RedisBackend. */
export interface RedisBackendOptions {
  /** An ioredis client or Cluster. The backend never closes it: you own it. */
  redis: Redis | Cluster;
  /** Prefix of every key (no braces). Default: 'postern:sq:'. */
  prefix?: string;
  /**
   * Source of time for delays and leases. Default: the Redis server's clock, so workers on
   * machines with skewed clocks still agree on when a lease expires. Inject one only in tests.
   */
  clock?: Clock;
  /** Receives the eviction-policy warning. Default: process.emitWarning. */
  logger?: Logger;
  /** Check Redis's maxmemory-policy on first use and warn unless it is noeviction. Default: true. */
  checkEvictionPolicy?: boolean;
}

const SCRIPTS = {
  add: addScript,
  claim: claimScript,
  complete: completeScript,
  fail: failScript,
  extend: extendScript,
  release: releaseScript,
  stats: statsScript,
  completedList: completedListScript,
  deadList: deadListScript,
  deadRetry: deadRetryScript,
  deadPurge: deadPurgeScript,
} as const;

type ScriptName = keyof typeof SCRIPTS;
type ScriptCaller = (...args: (string | number)[]) => Promise<unknown>;

const ADD_CHUNK = 500;
const PURGE_CHUNK = 1_000;

/** Command names carry a hash of the script text, so two versions of this package on one Redis never run each other's scripts. */
function commandName(name: ScriptName, lua: string): string {
  return `postern_sq_${createHash('sha1').update(lua).digest('hex').slice(0, 12)}_${name}`;
}

type Reply = string | number | null | Reply[];

function asArray(value: unknown): Reply[] {
  return Array.isArray(value) ? (value as Reply[]) : [];
}

function parseKey(key: Reply | undefined): string | null {
  return key === '' || key === null || key === undefined ? null : String(key);
}

/** A job row of a claim reply: id, key, payload, attempt, maxAttempts, createdAt. */
function parseJob([id, key, payload, attempt, maxAttempts, createdAt]: (
  Reply | undefined
)[]): ExpiredJob {
  return {
    id: String(id),
    key: parseKey(key),
    payload: String(payload),
    attempt: Number(attempt),
    maxAttempts: Number(maxAttempts),
    createdAt: Number(createdAt),
  };
}

function parseClaim(reply: unknown): ClaimResult {
  const [jobs, stalled, dead, nextDue, deadJobs] = asArray(reply);
  return {
    jobs: asArray(jobs).map((row): LeasedJob => {
      const [id, key, payload, attempt, maxAttempts, token, createdAt] = asArray(row);
      return {
        ...parseJob([id, key, payload, attempt, maxAttempts, createdAt]),
        token: String(token),
      };
    }),
    stalled: asArray(stalled).map(String),
    dead: asArray(dead).map(String),
    nextDueInMs: typeof nextDue === 'number' && nextDue >= 0 ? nextDue : null,
    deadJobs: asArray(deadJobs).map((row) => parseJob(asArray(row))),
  };
}

const FAIL_RESULTS: Record<number, FailResult> = { 0: 'stale', 1: 'retried', 2: 'dead' };

/**
 * Keeps queues in Redis (standalone, Sentinel or Cluster). Every state change is one Lua
 * script, so no job is lost or doubled between two commands; all keys of a queue share one
 * hash tag.
 */
export class RedisBackend implements QueueBackend {
  readonly #redis: Redis | Cluster;
  readonly #prefix: string;
  readonly #clock: Clock | undefined;
  readonly #logger: Logger | undefined;
  readonly #commands = new Map<ScriptName, ScriptCaller>();
  #policyChecked: boolean;

  constructor(options: RedisBackendOptions) {
    const prefix = options.prefix ?? 'postern:sq:';
    if (typeof prefix !== 'string' || /[{}]/.test(prefix)) {
      throw new SyncQueueError('INVALID_OPTIONS', 'prefix must be a string without braces.');
    }
    if (typeof options.redis?.defineCommand !== 'function') {
      throw new SyncQueueError('INVALID_OPTIONS', 'redis must be an ioredis client or Cluster.');
    }
    this.#redis = options.redis;
    this.#prefix = prefix;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#policyChecked = options.checkEvictionPolicy === false;
    for (const [name, body] of Object.entries(SCRIPTS) as [ScriptName, string][]) {
      const lua = `${common}\n${body}`;
      const command = commandName(name, lua);
      this.#redis.defineCommand(command, { numberOfKeys: 8, lua });
      const caller = (this.#redis as unknown as Record<string, ScriptCaller>)[command];
      if (caller === undefined)
        throw new SyncQueueError(
          'INVALID_OPTIONS',
          'redis.defineCommand did not register a command.',
        );
      this.#commands.set(name, caller.bind(this.#redis));
    }
  }

  /**
   * Reads Redis's maxmemory-policy; warns (logger, or a process warning) unless it is
   * noeviction, because eviction silently deletes jobs. Resolves to the policy, or null if unreadable.
   */
  async checkEvictionPolicy(): Promise<string | null> {
    this.#policyChecked = true;
    let policy: string | null;
    try {
      const info = await this.#redis.info('memory');
      policy = /maxmemory_policy:(\S+)/.exec(info)?.[1] ?? null;
    } catch {
      return null;
    }
    if (policy !== null && policy !== 'noeviction') {
      const message = `Redis maxmemory-policy is "${policy}": Redis may evict queue keys and lose jobs. Set maxmemory-policy to noeviction.`;
      if (this.#logger === undefined) {
        process.emitWarning(message, { code: 'POSTERN_SYNC_QUEUE_EVICTION' });
      } else {
        this.#logger.warn({ policy }, message);
      }
    }
    return policy;
  }

  #call(queue: string, name: ScriptName, args: (string | number)[]): Promise<unknown> {
    if (!this.#policyChecked) void this.checkEvictionPolicy();
    const base = `${this.#prefix}{${queue}}:`;
    const command = this.#commands.get(name) as ScriptCaller;
    return command(
      `${base}q`,
      `${base}a`,
      `${base}d`,
      `${base}b`,
      `${base}p`,
      `${base}o`,
      `${base}seq`,
      `${base}c`,
      `${base}j:`,
      this.#clock === undefined ? '' : this.#clock.now(),
      ...args,
    );
  }

  async add(queue: string, jobs: readonly NewJob[]): Promise<AddResult[]> {
    const chunks: Promise<unknown>[] = [];
    for (let start = 0; start < jobs.length; start += ADD_CHUNK) {
      const args: (string | number)[] = [];
      for (const job of jobs.slice(start, start + ADD_CHUNK)) {
        args.push(job.key ?? '', job.payload, job.delayMs, job.maxAttempts);
      }
      chunks.push(this.#call(queue, 'add', args));
    }
    const results: AddResult[] = [];
    for (const reply of await Promise.all(chunks)) {
      const flat = asArray(reply);
      for (let index = 0; index < flat.length; index += 2) {
        results.push({ id: String(flat[index]), coalesced: flat[index + 1] === 1 });
      }
    }
    return results;
  }

  async claim(queue: string, count: number, leaseMs: number): Promise<ClaimResult> {
    return parseClaim(await this.#call(queue, 'claim', [count, leaseMs]));
  }

  async extend(queue: string, id: string, token: string, leaseMs: number): Promise<FencedResult> {
    return (await this.#call(queue, 'extend', [id, token, leaseMs])) === 1 ? 'ok' : 'stale';
  }

  async complete(
    queue: string,
    runs: readonly RunRef[],
    fetch: number,
    leaseMs: number,
    keep?: CompletedRetention,
  ): Promise<CompleteResult> {
    const args: (string | number)[] = [fetch, leaseMs, keep?.count ?? 0, keep?.ageMs ?? ''];
    for (const run of runs) args.push(run.id, run.token);
    const [flags, next] = asArray(await this.#call(queue, 'complete', args));
    return {
      results: asArray(flags).map((flag): FencedResult => (flag === 1 ? 'ok' : 'stale')),
      next: next === undefined ? null : parseClaim(next),
    };
  }

  async fail(
    queue: string,
    id: string,
    token: string,
    error: string,
    retryInMs: number | null,
  ): Promise<FailResult> {
    const reply = await this.#call(queue, 'fail', [
      id,
      token,
      error,
      retryInMs === null ? '' : retryInMs,
    ]);
    return FAIL_RESULTS[Number(reply)] ?? 'stale';
  }

  async release(queue: string, id: string, token: string): Promise<FencedResult> {
    return (await this.#call(queue, 'release', [id, token])) === 1 ? 'ok' : 'stale';
  }

  async stats(queue: string): Promise<QueueStats> {
    const [ready, delayed, blocked, active, dead, completed] = asArray(
      await this.#call(queue, 'stats', []),
    ).map(Number);
    return {
      waiting: (ready ?? 0) + (blocked ?? 0),
      delayed: delayed ?? 0,
      active: active ?? 0,
      dead: dead ?? 0,
      completed: completed ?? 0,
    };
  }

  async listCompleted(queue: string, offset: number, limit: number): Promise<CompletedRecord[]> {
    return asArray(await this.#call(queue, 'completedList', [offset, limit])).map((row) => {
      const [id, key, payload, attempts, createdAt, completedAt] = asArray(row);
      return {
        id: String(id),
        key: parseKey(key),
        payload: String(payload),
        attempts: Number(attempts),
        createdAt: Number(createdAt),
        completedAt: Number(completedAt),
      };
    });
  }

  async listDead(queue: string, offset: number, limit: number): Promise<DeadLetterRecord[]> {
    return asArray(await this.#call(queue, 'deadList', [offset, limit])).map((row) => {
      const [id, key, payload, attempts, lastError, failedAt] = asArray(row);
      return {
        id: String(id),
        key: parseKey(key),
        payload: String(payload),
        attempts: Number(attempts),
        lastError: String(lastError),
        failedAt: Number(failedAt),
      };
    });
  }

  async retryDead(queue: string, id: string): Promise<string | null> {
    const reply = await this.#call(queue, 'deadRetry', [id]);
    return typeof reply === 'string' || typeof reply === 'number' ? String(reply) : null;
  }

  async purgeDead(queue: string): Promise<number> {
    let total = 0;
    for (;;) {
      const deleted = Number(await this.#call(queue, 'deadPurge', [PURGE_CHUNK]));
      total += deleted;
      if (deleted < PURGE_CHUNK) return total;
    }
  }
}
