// The public surface of @postern/rate-limit/testing: a manual clock and the contract suite
// every backend (ours and third parties') must pass.
import { deepStrictEqual, ok, strictEqual } from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { RateLimitBackend } from './backend.js';
import type { Clock } from './ports.js';
import { combine, createRateLimiter } from './limiter.js';
import type { RateLimiter } from './limiter.js';

/** A clock that moves only when told: for tests of refill and expiry without waiting. */
export class ManualClock implements Clock {
  #nowMs: number;

  /** Starts at `startMs` (ms since the epoch). Default: 1_700_000_000_000. */
  constructor(startMs = 1_700_000_000_000) {
    this.#nowMs = startMs;
  }

  /** The current time, in ms. */
  now(): number {
    return this.#nowMs;
  }

  /** Moves time forward by `ms`. */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`advance needs ms >= 0, got ${ms}`);
    this.#nowMs += ms;
  }
}

/** The state one contract test runs against. */
export interface BackendContractFixture {
  /**
   * Backends sharing one store: say, one `RedisBackend` per Redis connection, or the same
   * `MemoryBackend` several times. The concurrency test spreads calls over all of them.
   */
  readonly backends: readonly RateLimitBackend[];
  /** Period used by the refill and expiry tests, in ms: short for real time, any for a manual clock. */
  readonly periodMs: number;
  /** Lets `ms` of the backend's time pass (advance a manual clock, or really wait). */
  advance(ms: number): Promise<void> | void;
  /** True when the store still holds state for the key. */
  stored(prefix: string, key: string): Promise<boolean> | boolean;
  /** Releases what the fixture holds. Optional. */
  close?(): Promise<void> | void;
}

/** What `backendContract` needs: the fixture factory and the test functions of your runner. */
export interface BackendContractOptions {
  /** Names the suite, e.g. `'RedisBackend on a Cluster'`. */
  readonly name: string;
  /** Makes a fresh fixture for one test. */
  readonly createFixture: () => Promise<BackendContractFixture> | BackendContractFixture;
  /** `describe` of vitest, jest or mocha. */
  readonly describe: (name: string, body: () => void) => void;
  /** `it` of vitest, jest or mocha; the third argument is a timeout in ms. */
  readonly it: (name: string, body: () => Promise<void>, timeoutMs?: number) => void;
  /** Calls fired at once in the concurrency test. Default: 200. */
  readonly concurrentCalls?: number;
}

const LONG_PERIOD_MS = 3_600_000;

/** Makes one test's limiter: `limit` per `periodMs` on the first backend, `keys` reset afterwards. */
type LimiterOf = (limit: number, periodMs?: number, keys?: readonly string[]) => RateLimiter;

/**
 * Defines the rate-limit backend contract suite with your test runner: exact counts under
 * concurrency, all-or-nothing charging, refill timing, peek, reset and expiry of idle keys.
 */
export function backendContract(options: BackendContractOptions): void {
  const { describe, it } = options;
  const concurrentCalls = options.concurrentCalls ?? 200;

  const test = (
    name: string,
    body: (context: {
      fixture: BackendContractFixture;
      prefix: string;
      used: Array<[RateLimiter, string]>;
      limiterOf: LimiterOf;
    }) => Promise<void>,
  ): void => {
    it(
      name,
      async () => {
        const fixture = await options.createFixture();
        const used: Array<[RateLimiter, string]> = [];
        try {
          const prefix = `contract-${randomUUID().slice(0, 12)}`;
          // A limiter on the fixture's first backend, whose `keys` are reset after the test.
          const limiterOf: LimiterOf = (limit, periodMs = LONG_PERIOD_MS, keys = ['subject']) => {
            const limiter = createRateLimiter({
              limit,
              periodMs,
              backend: fixture.backends[0]!,
              prefix,
            });
            for (const key of keys) used.push([limiter, key]);
            return limiter;
          };
          await body({ fixture, prefix, used, limiterOf });
        } finally {
          for (const [limiter, key] of used) await limiter.reset(key);
          await fixture.close?.();
        }
      },
      30_000,
    );
  };

  describe(`rate-limit backend contract: ${options.name}`, () => {
    test('allows exactly the burst at once, then denies with a retry time', async ({
      limiterOf,
    }) => {
      const limiter = limiterOf(5);
      const remaining: number[] = [];
      for (let call = 0; call < 5; call += 1) {
        const result = await limiter.consume('subject');
        strictEqual(result.allowed, true);
        remaining.push(result.remaining);
      }
      deepStrictEqual(remaining, [4, 3, 2, 1, 0]);
      const denied = await limiter.consume('subject');
      strictEqual(denied.allowed, false);
      strictEqual(denied.remaining, 0);
      ok(
        denied.retryAfterMs > 0 && denied.retryAfterMs <= LONG_PERIOD_MS / 5,
        `retryAfterMs ${denied.retryAfterMs}`,
      );
      ok(denied.resetAfterMs > LONG_PERIOD_MS - 60_000 && denied.resetAfterMs <= LONG_PERIOD_MS);
    });

    test('a denied call charges nothing, whatever its cost', async ({ limiterOf }) => {
      const limiter = limiterOf(10);
      strictEqual((await limiter.consume('subject', { cost: 6 })).remaining, 4);
      const greedy = await limiter.consume('subject', { cost: 5 });
      strictEqual(greedy.allowed, false);
      strictEqual(greedy.remaining, 4);
      const fitting = await limiter.consume('subject', { cost: 4 });
      strictEqual(fitting.allowed, true);
      strictEqual(fitting.remaining, 0);
    });

    test(`allows exactly the limit out of ${concurrentCalls} concurrent calls over every backend`, async ({
      fixture,
      prefix,
      used,
    }) => {
      const limiters = fixture.backends.map((backend) =>
        createRateLimiter({ limit: 50, periodMs: LONG_PERIOD_MS, backend, prefix }),
      );
      used.push([limiters[0]!, 'hot']);
      const results = await Promise.all(
        Array.from({ length: concurrentCalls }, (_, index) =>
          limiters[index % limiters.length]!.consume('hot'),
        ),
      );
      strictEqual(results.filter((result) => result.allowed).length, 50);
      const remainders = results
        .filter((result) => result.allowed)
        .map((result) => result.remaining);
      deepStrictEqual(
        [...remainders].sort((a, b) => a - b),
        Array.from({ length: 50 }, (_, index) => index),
      );
    });

    test('peek reports without charging', async ({ fixture, prefix, limiterOf }) => {
      const limiter = limiterOf(3);
      const fresh = await limiter.peek('subject');
      deepStrictEqual(fresh, { allowed: true, remaining: 3, retryAfterMs: 0, resetAfterMs: 0 });
      strictEqual(await fixture.stored(prefix, 'subject'), false);
      await limiter.consume('subject', { cost: 3 });
      const full = await limiter.peek('subject');
      strictEqual(full.allowed, false);
      strictEqual(full.remaining, 0);
      ok(full.retryAfterMs > 0);
      strictEqual((await limiter.peek('subject')).remaining, 0);
    });

    test('reset gives the key its full burst back', async ({ fixture, prefix, limiterOf }) => {
      const limiter = limiterOf(2);
      await limiter.consume('subject', { cost: 2 });
      strictEqual((await limiter.consume('subject')).allowed, false);
      await limiter.reset('subject');
      strictEqual(await fixture.stored(prefix, 'subject'), false);
      strictEqual((await limiter.consume('subject')).remaining, 1);
    });

    test('combine charges every limiter or none', async ({ fixture, prefix, used }) => {
      const backend = fixture.backends[0]!;
      const perMinute = createRateLimiter({
        limit: 5,
        periodMs: LONG_PERIOD_MS,
        backend,
        prefix: `${prefix}-a`,
      });
      const perDay = createRateLimiter({
        limit: 2,
        periodMs: LONG_PERIOD_MS * 24,
        backend,
        prefix: `${prefix}-b`,
      });
      used.push([perMinute, 'subject'], [perDay, 'subject']);
      const both = combine(perMinute, perDay);
      strictEqual((await both.consume('subject')).allowed, true);
      strictEqual((await both.consume('subject')).allowed, true);
      const denied = await both.consume('subject');
      strictEqual(denied.allowed, false);
      strictEqual(denied.results[0]!.allowed, true);
      strictEqual(denied.results[1]!.allowed, false);
      ok(denied.retryAfterMs > 0);
      // The per-minute limiter was charged for the two allowed calls only.
      strictEqual((await perMinute.peek('subject')).remaining, 3);
      await both.reset('subject');
      strictEqual((await perDay.peek('subject')).remaining, 2);
    });

    test('refills one call per periodMs / limit', async ({ fixture, limiterOf }) => {
      const period = fixture.periodMs;
      const limiter = limiterOf(2, period);
      strictEqual((await limiter.consume('subject')).allowed, true);
      strictEqual((await limiter.consume('subject')).allowed, true);
      const denied = await limiter.consume('subject');
      strictEqual(denied.allowed, false);
      ok(
        denied.retryAfterMs > 0 && denied.retryAfterMs <= period / 2,
        `retryAfterMs ${denied.retryAfterMs}`,
      );
      // 0.6 of a period frees one call (one per 0.5) and leaves a margin for real clocks.
      await fixture.advance(period * 0.6);
      strictEqual((await limiter.consume('subject')).allowed, true);
      strictEqual((await limiter.consume('subject')).allowed, false);
    });

    test('a key disappears once it has fully rested', async ({ fixture, prefix, limiterOf }) => {
      const period = fixture.periodMs;
      const limiter = limiterOf(4, period, ['idle', 'other-1', 'other-2']);
      const first = await limiter.consume('idle', { cost: 4 });
      ok(
        first.resetAfterMs > period * 0.9 && first.resetAfterMs <= period,
        `resetAfterMs ${first.resetAfterMs}`,
      );
      strictEqual(await fixture.stored(prefix, 'idle'), true);
      await fixture.advance(period * 1.3);
      // New keys let a lazy store sweep; a store with TTLs has dropped the key already.
      await limiter.consume('other-1');
      await limiter.consume('other-2');
      strictEqual(await fixture.stored(prefix, 'idle'), false);
      deepStrictEqual(await limiter.peek('idle'), {
        allowed: true,
        remaining: 4,
        retryAfterMs: 0,
        resetAfterMs: 0,
      });
    });
  });
}
