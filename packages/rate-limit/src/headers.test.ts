import { describe, expect, it } from 'vitest';
import { rateLimitHeaders, retryAfterSeconds } from './headers.js';
import { combine, createRateLimiter } from './limiter.js';
import { MemoryBackend } from './memory-backend.js';
import { ManualClock } from './testing.js';

describe('retryAfterSeconds', () => {
  it('rounds up to whole seconds, at least one when denied', () => {
    expect(
      retryAfterSeconds({ allowed: true, remaining: 1, retryAfterMs: 0, resetAfterMs: 10 }),
    ).toBe(0);
    expect(
      retryAfterSeconds({ allowed: false, remaining: 0, retryAfterMs: 1, resetAfterMs: 10 }),
    ).toBe(1);
    expect(
      retryAfterSeconds({ allowed: false, remaining: 0, retryAfterMs: 1_001, resetAfterMs: 10 }),
    ).toBe(2);
  });
});

describe('rateLimitHeaders', () => {
  it('describes one limiter from the values consume returned', async () => {
    const clock = new ManualClock();
    const limiter = createRateLimiter({
      limit: 2,
      periodMs: 60_000,
      prefix: 'login',
      backend: new MemoryBackend({ clock }),
    });
    const first = await limiter.consume('alice');
    expect(rateLimitHeaders(limiter, first)).toEqual({
      'RateLimit-Policy': '"login";q=2;w=60',
      RateLimit: '"login";r=1;t=30',
    });
    await limiter.consume('alice');
    const denied = await limiter.consume('alice');
    expect(rateLimitHeaders(limiter, denied)).toEqual({
      'RateLimit-Policy': '"login";q=2;w=60',
      RateLimit: '"login";r=0;t=60',
      'Retry-After': '30',
    });
  });

  it('lists every policy of a combined limiter', async () => {
    const backend = new MemoryBackend({ clock: new ManualClock() });
    const both = combine(
      createRateLimiter({ limit: 10, periodMs: 60_000, prefix: 'minute', backend }),
      createRateLimiter({ limit: 100, periodMs: 86_400_000, prefix: 'day', backend }),
    );
    const result = await both.consume('bob');
    expect(rateLimitHeaders(both, result)).toEqual({
      'RateLimit-Policy': '"minute";q=10;w=60, "day";q=100;w=86400',
      RateLimit: '"minute";r=9;t=6, "day";r=99;t=864',
    });
  });

  it('reports a window of at least one second, with the quota of that second', async () => {
    const limiter = createRateLimiter({ limit: 5, periodMs: 100, prefix: 'fast' });
    expect(rateLimitHeaders(limiter, await limiter.consume('k'))['RateLimit-Policy']).toBe(
      '"fast";q=50;w=1',
    );
  });
});

describe('RateLimit-Policy', () => {
  const policyOf = async (limit: number, periodMs: number, burst?: number): Promise<string> => {
    const limiter = createRateLimiter({
      limit,
      periodMs,
      ...(burst === undefined ? {} : { burst }),
      prefix: 'p',
      backend: new MemoryBackend({ clock: new ManualClock() }),
    });
    return rateLimitHeaders(limiter, await limiter.consume('k'))['RateLimit-Policy'];
  };

  it('states the rate of fractional limits and of periods that are not whole seconds', async () => {
    // Quota per window equals limit per periodMs, with the window in whole seconds.
    expect(await policyOf(10, 500)).toBe('"p";q=20;w=1');
    expect(await policyOf(3, 1_500)).toBe('"p";q=4;w=2');
    expect(await policyOf(2.5, 2_000)).toBe('"p";q=2;w=2');
    // Less than one call per window: the window grows to the time of one call.
    expect(await policyOf(0.5, 3_600_000)).toBe('"p";q=1;w=7200');
    expect(await policyOf(0.3, 1_000, 1)).toBe('"p";q=1;w=4');
  });

  it('keeps q and w Structured Field Integers of at most 15 digits', async () => {
    expect(await policyOf(1e21, 1e18, 1)).toBe('"p";q=999999999999999;w=999999999999999');
  });
});
