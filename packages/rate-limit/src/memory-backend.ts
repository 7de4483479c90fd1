import type { BackendDecision, BackendMode, BackendRequest, Clock, RateLimitBackend } from './backend.js';
import { RateLimitError } from './errors.js';

/** Options of `new MemoryBackend()`. */
export interface MemoryBackendOptions {
  /**
   * Most keys held at once. Past it, the key charged least recently is forgotten (its subject
   * starts afresh), so a flood of new keys costs bounded memory. Default: 100_000.
   */
  readonly maxKeys?: number;
  /** Source of time, in ms. Default: `Date` (wall clock). Tests pass a manual clock. */
  readonly clock?: Clock;
}

const DEFAULTS = { maxKeys: 100_000, clock: Date as Clock };

// Keys whose backlog has drained are dropped when met; each new key also looks at the two
// least recently charged keys, so idle keys leave without a timer and without a sweep pass.
const SWEEP_PER_INSERT = 2;

/**
 * Limiter state in this process: one number per key, O(1) per call, no timers. State is lost
 * on restart and not shared between processes; use `RedisBackend` for that.
 */
export class MemoryBackend implements RateLimitBackend {
  readonly #clock: Clock;
  readonly #maxKeys: number;
  // Insertion order is kept as "least recently charged first": a charge re-inserts its key.
  readonly #tats = new Map<string, number>();

  constructor(options: MemoryBackendOptions = {}) {
    const settings = { ...DEFAULTS, ...options };
    if (!Number.isSafeInteger(settings.maxKeys) || settings.maxKeys < 1) {
      throw new RateLimitError('INVALID_OPTION', `maxKeys must be a positive integer, got ${String(settings.maxKeys)}`, {
        option: 'maxKeys',
      });
    }
    this.#clock = settings.clock;
    this.#maxKeys = settings.maxKeys;
  }

  /** Number of keys held now, idle ones not yet swept included. */
  get size(): number {
    return this.#tats.size;
  }

  /** True when state for the key is held (a drained key not yet swept included). */
  has(prefix: string, key: string): boolean {
    return this.#tats.has(`${prefix}\u0000${key}`);
  }

  /** Checks, and in `consume` mode charges, every request at once (synchronously). */
  apply(requests: readonly BackendRequest[], mode: BackendMode): BackendDecision {
    const nowUs = Math.round(this.#clock.now() * 1000);
    const tats = this.#tats;
    const backlogUs = new Array<number>(requests.length);
    let allowed = true;
    for (let index = 0; index < requests.length; index += 1) {
      const request = requests[index]!;
      const storageKey = `${request.prefix}\u0000${request.key}`;
      const tat = tats.get(storageKey);
      let backlog = 0;
      if (tat !== undefined) {
        if (tat > nowUs) backlog = tat - nowUs;
        else tats.delete(storageKey);
      }
      backlogUs[index] = backlog;
      if (backlog + request.incrementUs > request.toleranceUs) allowed = false;
    }
    if (allowed && mode === 'consume') {
      for (let index = 0; index < requests.length; index += 1) {
        const request = requests[index]!;
        const storageKey = `${request.prefix}\u0000${request.key}`;
        const known = tats.delete(storageKey);
        tats.set(storageKey, nowUs + backlogUs[index]! + request.incrementUs);
        if (!known) this.#sweep(nowUs);
      }
    }
    return { allowed, backlogUs };
  }

  /** Forgets the state of every given key. */
  reset(keys: readonly Pick<BackendRequest, 'prefix' | 'key'>[]): void {
    for (const { prefix, key } of keys) this.#tats.delete(`${prefix}\u0000${key}`);
  }

  #sweep(nowUs: number): void {
    const tats = this.#tats;
    let checked = 0;
    for (const [storageKey, tat] of tats) {
      if (tats.size > this.#maxKeys || tat <= nowUs) tats.delete(storageKey);
      else break;
      checked += 1;
      if (checked >= SWEEP_PER_INSERT && tats.size <= this.#maxKeys) break;
    }
  }
}
