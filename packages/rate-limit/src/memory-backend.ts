import type { BackendDecision, BackendMode, BackendRequest, RateLimitBackend } from './backend.js';
import type { Clock } from './ports.js';
import { RateLimitError } from './errors.js';

/** Options of `new MemoryBackend()`. */
export interface MemoryBackendOptions {
  /**
   * Most keys held per limiter (per prefix). Past it, the oldest key in the sweep rotation is
   * forgotten (its subject starts afresh), so a flood of new keys costs bounded memory.
   * Default: 100_000.
   */
  readonly maxKeys?: number;
  /** Source of time, in ms. Default: `Date` (wall clock). Tests pass a manual clock. */
  readonly clock?: Clock;
}

const DEFAULTS = { maxKeys: 100_000, clock: Date as Clock };

// Each new key looks at the two keys at the head of its table: a drained one is dropped, a
// live one moves to the tail (second chance) or, past the cap, is evicted. The head so cycles
// through the table and drained keys leave with no timer per key and no full sweep.
const SWEEP_PER_INSERT = 2;

/** One key's state; mutated in place so a charge allocates nothing. */
interface Entry {
  /** Theoretical arrival time, in µs. */
  tat: number;
}

/** @internal A limiter's keys in a `MemoryBackend`. */
export type MemoryTable = Map<string, Entry>;

/**
 * Limiter state in this process: one number per key, O(1) per call, no timers. State is lost
 * on restart and not shared between processes; use `RedisBackend` for that.
 */
export class MemoryBackend implements RateLimitBackend {
  readonly #clock: Clock;
  readonly #maxKeys: number;
  readonly #tables = new Map<string, MemoryTable>();

  constructor(options: MemoryBackendOptions = {}) {
    const settings = { ...DEFAULTS, ...options };
    if (!Number.isSafeInteger(settings.maxKeys) || settings.maxKeys < 1) {
      throw new RateLimitError(
        'INVALID_OPTION',
        `maxKeys must be a positive integer, got ${String(settings.maxKeys)}`,
        {
          option: 'maxKeys',
        },
      );
    }
    this.#clock = settings.clock;
    this.#maxKeys = settings.maxKeys;
  }

  /** Number of keys held now over all limiters, drained ones not yet swept included. */
  get size(): number {
    let total = 0;
    for (const table of this.#tables.values()) total += table.size;
    return total;
  }

  /** True when state for the key is held (a drained key not yet swept included). */
  has(prefix: string, key: string): boolean {
    return this.#tables.get(prefix)?.has(key) ?? false;
  }

  /** Checks, and in `consume` mode charges, every request at once (synchronously). */
  apply(requests: readonly BackendRequest[], mode: BackendMode): BackendDecision {
    const nowUs = Math.round(this.#clock.now() * 1000);
    const backlogUs = new Array<number>(requests.length);
    let allowed = true;
    for (let index = 0; index < requests.length; index += 1) {
      const request = requests[index]!;
      const tat = this.#tables.get(request.prefix)?.get(request.key)?.tat;
      const backlog = tat !== undefined && tat > nowUs ? tat - nowUs : 0;
      backlogUs[index] = backlog;
      if (backlog + request.incrementUs > request.toleranceUs) allowed = false;
    }
    if (allowed && mode === 'consume') {
      for (let index = 0; index < requests.length; index += 1) {
        const request = requests[index]!;
        const table = this.table(request.prefix);
        const tat = nowUs + backlogUs[index]! + request.incrementUs;
        const entry = table.get(request.key);
        if (entry === undefined) this.#insert(table, request.key, tat, nowUs);
        else entry.tat = tat;
      }
    }
    return { allowed, backlogUs };
  }

  /**
   * @internal One key, without the arrays of `apply`: the limiter's fast path. Returns the
   * backlog before the call in µs when allowed, or `-(backlog + 1)` when denied.
   */
  applyOne(
    table: MemoryTable,
    key: string,
    incrementUs: number,
    toleranceUs: number,
    charge: boolean,
  ): number {
    const nowUs = Math.round(this.#clock.now() * 1000);
    const entry = table.get(key);
    const backlog = entry !== undefined && entry.tat > nowUs ? entry.tat - nowUs : 0;
    if (backlog + incrementUs > toleranceUs) return -backlog - 1;
    if (charge) {
      if (entry === undefined) this.#insert(table, key, nowUs + incrementUs, nowUs);
      else entry.tat = nowUs + backlog + incrementUs;
    }
    return backlog;
  }

  /** Forgets the state of every given key. */
  reset(keys: readonly Pick<BackendRequest, 'prefix' | 'key'>[]): void {
    for (const { prefix, key } of keys) this.#tables.get(prefix)?.delete(key);
  }

  /** @internal The table of one prefix, created on first use. */
  table(prefix: string): MemoryTable {
    let table = this.#tables.get(prefix);
    if (table === undefined) {
      table = new Map();
      this.#tables.set(prefix, table);
    }
    return table;
  }

  #insert(table: MemoryTable, key: string, tat: number, nowUs: number): void {
    while (table.size >= this.#maxKeys) table.delete(table.keys().next().value!);
    let checked = 0;
    for (const [headKey, headEntry] of table) {
      if (checked >= SWEEP_PER_INSERT) break;
      checked += 1;
      table.delete(headKey);
      if (headEntry.tat > nowUs) table.set(headKey, headEntry);
    }
    table.set(key, { tat });
  }
}
