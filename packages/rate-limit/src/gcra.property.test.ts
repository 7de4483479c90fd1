import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRateLimiter } from './limiter.js';
import { MemoryBackend } from './memory-backend.js';
import { ManualClock } from './testing.js';

type Step =
  | { kind: 'consume'; cost: number }
  | { kind: 'peek'; cost: number }
  | { kind: 'advance'; ms: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('consume' as const), cost: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ kind: fc.constant('peek' as const), cost: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 5_000 }) }),
);

describe('GCRA properties (memory backend, manual clock)', () => {
  it('never lets more through than burst + elapsed × rate, never reports negative times, and a denial changes nothing', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 100, max: 60_000 }),
        fc.integer({ min: 4, max: 30 }),
        fc.array(step, { maxLength: 80 }),
        async (limit, periodMs, burst, steps) => {
          const clock = new ManualClock();
          const limiter = createRateLimiter({
            limit,
            periodMs,
            burst,
            backend: new MemoryBackend({ clock }),
          });
          let elapsedMs = 0;
          let charged = 0;
          for (const entry of steps) {
            if (entry.kind === 'advance') {
              clock.advance(entry.ms);
              elapsedMs += entry.ms;
              continue;
            }
            const before = await limiter.peek('k');
            const result =
              entry.kind === 'consume'
                ? await limiter.consume('k', { cost: entry.cost })
                : await limiter.peek('k', { cost: entry.cost });
            expect(result.remaining).toBeGreaterThanOrEqual(0);
            expect(result.retryAfterMs).toBeGreaterThanOrEqual(0);
            expect(result.resetAfterMs).toBeGreaterThanOrEqual(0);
            expect(result.allowed).toBe(result.retryAfterMs === 0);
            // Whether a call passes is exactly whether its (whole) cost fits in what was remaining.
            expect(result.allowed).toBe(entry.cost <= before.remaining);
            if (entry.kind === 'consume' && result.allowed) charged += entry.cost;
            if (!result.allowed || entry.kind === 'peek')
              expect(await limiter.peek('k')).toEqual(before);
            // One emission interval of slack for the µs rounding of the interval.
            expect(charged).toBeLessThanOrEqual(
              burst + (elapsedMs * limit) / periodMs + 1e-6 * charged,
            );
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('long periods', () => {
  it('handles a 30-day period with no timer and no overflow', async () => {
    const clock = new ManualClock();
    const limiter = createRateLimiter({
      limit: 6,
      periodMs: 2_592_000_000,
      backend: new MemoryBackend({ clock }),
    });
    for (let call = 0; call < 6; call += 1) expect((await limiter.consume('k')).allowed).toBe(true);
    const denied = await limiter.consume('k');
    expect(denied).toEqual({
      allowed: false,
      remaining: 0,
      retryAfterMs: 432_000_000,
      resetAfterMs: 2_592_000_000,
    });
  });
});
