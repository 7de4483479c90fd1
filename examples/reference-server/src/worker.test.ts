import { describe, expect, it } from 'vitest';
import { deliveryRetryOptions } from './worker.js';

/** The shortest time `runs` runs can span: every delay halved by jitter. */
function shortestSpan(runs: number, initialDelayMs: number, maxDelayMs: number): number {
  let span = 0;
  for (let retry = 0, delay = initialDelayMs; retry < runs - 1; retry += 1) {
    span += delay / 2;
    delay = Math.min(delay * 2, maxDelayMs);
  }
  return span;
}

describe('deliveryRetryOptions', () => {
  it('gives a job runs enough to span the lifetime even when jitter halves every delay, and not many more', () => {
    const day = 24 * 3_600_000;
    const options = deliveryRetryOptions({
      lifetimeMs: 5 * day,
      bounceLifetimeMs: 2 * day,
      initialDelayMs: 60_000,
      maxDelayMs: 3_600_000,
    });
    expect(options).toMatchObject({
      initialDelayMs: 60_000,
      maxDelayMs: 3_600_000,
      factor: 2,
      jitter: true,
    });
    // Far more than sync-queue's default of 5 runs, which would bounce after seconds of trouble.
    // Runs enough for the lifetime and then the bounce lifetime (a DSN the relays keep deferring).
    expect(shortestSpan(options.maxAttempts, 60_000, 3_600_000)).toBeGreaterThanOrEqual(7 * day);
    expect(shortestSpan(options.maxAttempts - 2, 60_000, 3_600_000)).toBeLessThan(7 * day);
  });

  it('never lets the longest delay fall below the first one', () => {
    const options = deliveryRetryOptions({
      lifetimeMs: 10_000,
      bounceLifetimeMs: 0,
      initialDelayMs: 2_000,
      maxDelayMs: 500,
    });
    expect(options.maxDelayMs).toBe(2_000);
    expect(shortestSpan(options.maxAttempts, 2_000, 2_000)).toBeGreaterThanOrEqual(10_000);
  });
});
