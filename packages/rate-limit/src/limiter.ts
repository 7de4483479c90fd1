import type { BackendDecision, BackendMode, BackendRequest, RateLimitBackend } from './backend.js';
import { RateLimitError, assertPositive, rejectWith, toError } from './errors.js';
import { MemoryBackend, type MemoryTable } from './memory-backend.js';

/** Options of `createRateLimiter`. */
export interface RateLimiterOptions {
  /** Calls (of cost 1) allowed per period, on average. Positive, finite. Required. */
  readonly limit: number;
  /** The period `limit` applies to, in ms. Positive, finite. Required. */
  readonly periodMs: number;
  /** Most calls allowed at once by a rested key (the bucket size), at least 1. Default: `max(1, limit)`. */
  readonly burst?: number;
  /** Where state lives. Default: a new `MemoryBackend()` for this limiter. */
  readonly backend?: RateLimitBackend;
  /**
   * Namespace of this limiter's keys, also its name in the `RateLimit` headers: printable ASCII
   * without spaces, `{`, `}`, `"` or `\`, at most 100 characters. Limiters sharing a backend need
   * distinct prefixes. Default: `rl:<limit>:<periodMs>:<burst>`.
   */
  readonly prefix?: string;
  /** Longest key accepted, in UTF-16 code units. Default: 512. Keys must be well-formed UTF-16. */
  readonly maxKeyLength?: number;
}

/** Options of one `consume` or `peek` call. */
export interface ConsumeOptions {
  /** What this call uses up, in units of one ordinary call. Positive, at most `burst`. Default: 1. */
  readonly cost?: number;
  /**
   * Stops waiting for the backend when aborted: the call rejects with the signal's reason. A
   * call already sent to Redis may still be charged there. Default: none.
   */
  readonly signal?: AbortSignal;
}

/** The answer to `consume` or `peek`. All durations are in ms, rounded up. */
export interface RateLimitResult {
  /** True when the call may proceed (for `consume`: it was charged). */
  readonly allowed: boolean;
  /** Calls of cost 1 that would still pass right now, after this call. */
  readonly remaining: number;
  /** How long to wait before this same call can pass; 0 when allowed. */
  readonly retryAfterMs: number;
  /** How long until the key is fully rested (and, in Redis, expires). */
  readonly resetAfterMs: number;
}

/** The answer of a combined limiter: the overall verdict and each limiter's own. */
export interface CombinedRateLimitResult extends RateLimitResult {
  /** Per limiter, in the order given to `combine`. */
  readonly results: readonly RateLimitResult[];
}

/** A GCRA rate limiter; satisfies the `RateLimiter` port of the other Postern packages. */
export interface RateLimiter {
  /** Calls allowed per period. */
  readonly limit: number;
  /** The period, in ms. */
  readonly periodMs: number;
  /** Calls allowed at once by a rested key. */
  readonly burst: number;
  /** Namespace of the keys, and the policy name in headers. */
  readonly prefix: string;
  /** Where state lives. */
  readonly backend: RateLimitBackend;
  /** Charges `cost` to `key` if it fits; a denied call charges nothing. */
  consume(key: string, options?: ConsumeOptions): Promise<RateLimitResult>;
  /** Tells whether a call of `cost` would pass now, charging nothing. */
  peek(key: string, options?: ConsumeOptions): Promise<RateLimitResult>;
  /** Forgets `key`, giving it its full burst again (say, after a successful login). */
  reset(key: string): Promise<void>;
}

/** Several limits on one action: each call is checked by all and charged to all or to none. */
export interface CombinedRateLimiter {
  /** The combined limiters, in order. */
  readonly limiters: readonly RateLimiter[];
  /** Charges `cost` to `key` in every limiter if all allow it, else charges nothing. */
  consume(key: string, options?: ConsumeOptions): Promise<CombinedRateLimitResult>;
  /** Tells whether a call would pass every limiter now, charging nothing. */
  peek(key: string, options?: ConsumeOptions): Promise<CombinedRateLimitResult>;
  /** Forgets `key` in every limiter. */
  reset(key: string): Promise<void>;
}

const DEFAULT_MAX_KEY_LENGTH = 512;
const MAX_PREFIX_LENGTH = 100;
// Keeps TAT + tolerance far below 2^53 µs so Lua doubles and JS numbers stay exact integers.
const MAX_TOLERANCE_US = 1e15;
const PREFIX_PATTERN = /^[!#-[\]-z|~]+$/;
// Marks limiters that `combine` can use, across copies of the package (its ESM and CJS builds).
// The value names the internal `request`/`settings` protocol; change it when they change.
const LIMITER_BRAND: unique symbol = Symbol.for('postern.rate-limit.limiter') as never;
const LIMITER_PROTOCOL = 1;

interface Settings {
  readonly prefix: string;
  readonly intervalUs: number;
  readonly toleranceUs: number;
  readonly maxKeyLength: number;
}

/** True unless `key` has a lone surrogate, which Redis (UTF-8) would store as U+FFFD. */
function isWellFormed(key: string): boolean {
  // String.prototype.isWellFormed is in every Node the package supports, not in the ES2023 lib.
  return (key as unknown as { isWellFormed(): boolean }).isWellFormed();
}

function validateKey(key: unknown, maxKeyLength: number): asserts key is string {
  if (typeof key !== 'string' || key.length === 0 || key.length > maxKeyLength) {
    const shown = typeof key === 'string' ? `a string of length ${key.length}` : typeof key;
    throw new RateLimitError(
      'INVALID_KEY',
      `key must be a non-empty string of at most ${maxKeyLength} characters, got ${shown}`,
      {
        option: 'key',
      },
    );
  }
  if (!isWellFormed(key)) {
    throw new RateLimitError(
      'INVALID_KEY',
      'key must be well-formed UTF-16: a lone surrogate would share its state with other keys in Redis',
      { option: 'key' },
    );
  }
}

function incrementOf(settings: Settings, options: ConsumeOptions | undefined): number {
  const cost = options?.cost;
  if (cost === undefined) return settings.intervalUs;
  if (typeof cost !== 'number' || !Number.isFinite(cost) || cost <= 0) {
    throw new RateLimitError(
      'INVALID_COST',
      `cost must be a positive finite number, got ${String(cost)}`,
      {
        option: 'cost',
      },
    );
  }
  const incrementUs = Math.max(1, Math.round(cost * settings.intervalUs));
  if (incrementUs > settings.toleranceUs) {
    throw new RateLimitError(
      'INVALID_COST',
      `cost ${cost} exceeds the burst of limiter "${settings.prefix}", so it could never pass`,
      { option: 'cost' },
    );
  }
  return incrementUs;
}

function toResult(
  settings: Settings,
  incrementUs: number,
  backlogUs: number,
  allowed: boolean,
  charged: boolean,
  retryOverrideUs: number | undefined,
): RateLimitResult {
  const { intervalUs, toleranceUs } = settings;
  if (allowed) {
    const after = charged ? backlogUs + incrementUs : backlogUs;
    return {
      allowed: true,
      remaining: Math.max(0, Math.floor((toleranceUs - after) / intervalUs)),
      retryAfterMs: 0,
      resetAfterMs: Math.ceil(after / 1000),
    };
  }
  const waitUs = retryOverrideUs ?? Math.max(backlogUs + incrementUs - toleranceUs, 0);
  return {
    allowed: false,
    remaining: Math.max(0, Math.floor((toleranceUs - backlogUs) / intervalUs)),
    retryAfterMs: Math.ceil(waitUs / 1000),
    resetAfterMs: Math.ceil(backlogUs / 1000),
  };
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/** Settles with `promise`, or rejects with the signal's reason as soon as it aborts. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return rejectWith(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(toError(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(toError(error));
      },
    );
  });
}

function checkDecision(decision: BackendDecision, count: number): BackendDecision {
  if (decision.backlogUs.length !== count) {
    throw new RateLimitError(
      'BACKEND_ERROR',
      `backend answered ${decision.backlogUs.length} backlogs for ${count} keys`,
    );
  }
  return decision;
}

/** Whether `value` is a limiter of `createRateLimiter`, from this copy of the package or another. */
function isGcraLimiter(value: unknown): value is GcraLimiter {
  if (typeof value !== 'object' || value === null) return false;
  const limiter = value as Partial<GcraLimiter> & { [LIMITER_BRAND]?: unknown };
  const settings = limiter.settings as Partial<Settings> | undefined;
  // The brand, and the shape combine relies on: an object that only copies the brand is refused.
  return (
    limiter[LIMITER_BRAND] === LIMITER_PROTOCOL &&
    typeof limiter.request === 'function' &&
    typeof limiter.prefix === 'string' &&
    typeof settings?.intervalUs === 'number' &&
    typeof settings.toleranceUs === 'number' &&
    typeof settings.maxKeyLength === 'number'
  );
}

class GcraLimiter implements RateLimiter {
  readonly limit: number;
  readonly periodMs: number;
  readonly burst: number;
  readonly prefix: string;
  readonly backend: RateLimitBackend;
  /** @internal */
  readonly settings: Settings;
  // The memory backend answers synchronously; calling it without arrays keeps it fast.
  readonly #memory: MemoryBackend | undefined;
  readonly #table: MemoryTable | undefined;

  constructor(options: RateLimiterOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new RateLimitError('INVALID_OPTION', 'createRateLimiter needs an options object', {
        option: 'options',
      });
    }
    const { limit, periodMs } = options;
    assertPositive(limit, 'limit');
    assertPositive(periodMs, 'periodMs');
    // A limit below one call per period still needs room for one call at once.
    const burst = options.burst ?? Math.max(1, limit);
    assertPositive(burst, 'burst');
    const maxKeyLength = options.maxKeyLength ?? DEFAULT_MAX_KEY_LENGTH;
    if (!Number.isSafeInteger(maxKeyLength) || maxKeyLength < 1) {
      throw new RateLimitError(
        'INVALID_OPTION',
        `maxKeyLength must be a positive integer, got ${String(maxKeyLength)}`,
        {
          option: 'maxKeyLength',
        },
      );
    }
    const intervalUs = Math.round((periodMs * 1000) / limit);
    if (intervalUs < 1) {
      throw new RateLimitError(
        'INVALID_OPTION',
        `limit ${limit} per ${periodMs} ms is finer than one call per microsecond`,
        {
          option: 'limit',
        },
      );
    }
    if (burst < 1) {
      throw new RateLimitError('INVALID_OPTION', `burst must be at least 1, got ${burst}`, {
        option: 'burst',
      });
    }
    const toleranceUs = Math.round(burst * intervalUs);
    if (toleranceUs > MAX_TOLERANCE_US) {
      throw new RateLimitError(
        'INVALID_OPTION',
        `burst × periodMs / limit must stay under ~31 years`,
        { option: options.burst === undefined ? 'periodMs' : 'burst' },
      );
    }
    const prefix = options.prefix ?? `rl:${limit}:${periodMs}:${burst}`;
    if (
      typeof prefix !== 'string' ||
      prefix.length > MAX_PREFIX_LENGTH ||
      !PREFIX_PATTERN.test(prefix)
    ) {
      throw new RateLimitError(
        'INVALID_OPTION',
        `prefix must be 1 to ${MAX_PREFIX_LENGTH} printable ASCII characters without spaces, braces, quotes or backslashes`,
        { option: 'prefix' },
      );
    }
    this.limit = limit;
    this.periodMs = periodMs;
    this.burst = burst;
    this.prefix = prefix;
    this.backend = options.backend ?? new MemoryBackend();
    this.settings = { prefix, intervalUs, toleranceUs, maxKeyLength };
    this.#memory = this.backend instanceof MemoryBackend ? this.backend : undefined;
    this.#table = this.#memory?.table(prefix);
  }

  /** @internal On the prototype, so a copy of the limiter's fields (`{ ...limiter }`) lacks it. */
  get [LIMITER_BRAND](): number {
    return LIMITER_PROTOCOL;
  }

  /** @internal Builds the backend request for one call; throws on bad input. */
  request(key: string, options: ConsumeOptions | undefined): BackendRequest {
    const settings = this.settings;
    validateKey(key, settings.maxKeyLength);
    return {
      prefix: settings.prefix,
      key,
      incrementUs: incrementOf(settings, options),
      toleranceUs: settings.toleranceUs,
    };
  }

  consume(key: string, options?: ConsumeOptions): Promise<RateLimitResult> {
    return this.#run(key, options, 'consume');
  }

  peek(key: string, options?: ConsumeOptions): Promise<RateLimitResult> {
    return this.#run(key, options, 'peek');
  }

  reset(key: string): Promise<void> {
    try {
      validateKey(key, this.settings.maxKeyLength);
      return Promise.resolve(this.backend.reset([{ prefix: this.prefix, key }]));
    } catch (error) {
      return rejectWith(error);
    }
  }

  #run(
    key: string,
    options: ConsumeOptions | undefined,
    mode: BackendMode,
  ): Promise<RateLimitResult> {
    if (options?.signal?.aborted === true) return rejectWith(options.signal.reason);
    const memory = this.#memory;
    if (memory !== undefined) {
      const settings = this.settings;
      try {
        validateKey(key, settings.maxKeyLength);
        const incrementUs =
          options === undefined ? settings.intervalUs : incrementOf(settings, options);
        const answer = memory.applyOne(
          this.#table!,
          key,
          incrementUs,
          settings.toleranceUs,
          mode === 'consume',
        );
        return Promise.resolve(
          answer >= 0
            ? toResult(settings, incrementUs, answer, true, mode === 'consume', undefined)
            : toResult(settings, incrementUs, -answer - 1, false, false, undefined),
        );
      } catch (error) {
        return rejectWith(error);
      }
    }
    let request: BackendRequest;
    let decision: BackendDecision | Promise<BackendDecision>;
    try {
      request = this.request(key, options);
      decision = this.backend.apply([request], mode);
    } catch (error) {
      return rejectWith(error);
    }
    const settings = this.settings;
    const finish = (answer: BackendDecision): RateLimitResult => {
      checkDecision(answer, 1);
      return toResult(
        settings,
        request.incrementUs,
        answer.backlogUs[0]!,
        answer.allowed,
        mode === 'consume',
        answer.retryAfterUs,
      );
    };
    if (isPromise(decision)) return abortable(decision.then(finish), options?.signal);
    try {
      return Promise.resolve(finish(decision));
    } catch (error) {
      return rejectWith(error);
    }
  }
}

/**
 * Creates a GCRA limiter: `limit` calls per `periodMs` on average, up to `burst` at once,
 * O(1) state per key, on the memory backend unless `backend` says otherwise.
 */
export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  return new GcraLimiter(options);
}

/**
 * Combines limiters on one backend (say 10/min and 100/day): a call passes only if all allow
 * it, and is then charged to all in one atomic backend call; otherwise to none.
 */
export function combine(...limiters: RateLimiter[]): CombinedRateLimiter {
  if (limiters.length === 0) {
    throw new RateLimitError('INVALID_OPTION', 'combine needs at least one limiter', {
      option: 'limiters',
    });
  }
  const parts = limiters.map((limiter) => {
    if (!isGcraLimiter(limiter)) {
      throw new RateLimitError(
        'INVALID_OPTION',
        'combine takes limiters made by createRateLimiter',
        { option: 'limiters' },
      );
    }
    return limiter;
  });
  const backend = parts[0]!.backend;
  if (parts.some((part) => part.backend !== backend)) {
    throw new RateLimitError(
      'INVALID_OPTION',
      'combined limiters must share one backend, so the charge is one atomic step',
      {
        option: 'limiters',
      },
    );
  }
  if (new Set(parts.map((part) => part.prefix)).size !== parts.length) {
    throw new RateLimitError('INVALID_OPTION', 'combined limiters need distinct prefixes', {
      option: 'limiters',
    });
  }

  const run = (
    key: string,
    options: ConsumeOptions | undefined,
    mode: BackendMode,
  ): Promise<CombinedRateLimitResult> => {
    if (options?.signal?.aborted === true) return rejectWith(options.signal.reason);
    let requests: BackendRequest[];
    let decision: BackendDecision | Promise<BackendDecision>;
    try {
      requests = parts.map((part) => part.request(key, options));
      decision = backend.apply(requests, mode);
    } catch (error) {
      return rejectWith(error);
    }
    const finish = (answer: BackendDecision): CombinedRateLimitResult => {
      checkDecision(answer, requests.length);
      const results = parts.map((part, index) => {
        const request = requests[index]!;
        const backlog = answer.backlogUs[index]!;
        // In a denied combined call each part reports whether it alone would have passed.
        const partAllowed = answer.allowed || backlog + request.incrementUs <= request.toleranceUs;
        return toResult(
          part.settings,
          request.incrementUs,
          backlog,
          partAllowed,
          answer.allowed && mode === 'consume',
          answer.retryAfterUs,
        );
      });
      return {
        allowed: answer.allowed,
        remaining: Math.min(...results.map((result) => result.remaining)),
        retryAfterMs: Math.max(...results.map((result) => result.retryAfterMs)),
        resetAfterMs: Math.max(...results.map((result) => result.resetAfterMs)),
        results,
      };
    };
    if (isPromise(decision)) return abortable(decision.then(finish), options?.signal);
    try {
      return Promise.resolve(finish(decision));
    } catch (error) {
      return rejectWith(error);
    }
  };

  return {
    limiters: parts,
    consume: (key, options) => run(key, options, 'consume'),
    peek: (key, options) => run(key, options, 'peek'),
    reset: (key) => {
      try {
        for (const part of parts) validateKey(key, part.settings.maxKeyLength);
        return Promise.resolve(backend.reset(parts.map((part) => ({ prefix: part.prefix, key }))));
      } catch (error) {
        return rejectWith(error);
      }
    },
  };
}
