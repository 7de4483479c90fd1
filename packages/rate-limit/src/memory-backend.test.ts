import { describe, expect, it } from 'vitest';
import { createRateLimiter } from './limiter.js';
import { MemoryBackend } from './memory-backend.js';
import { RateLimitError } from './errors.js';
import { ManualClock, backendContract } from './testing.js';

backendContract({
  name: 'MemoryBackend with a manual clock',
  describe,
  it,
  createFixture: () => {
    const clock = new ManualClock();
    const backend = new MemoryBackend({ clock });
    return {
      backends: [backend, backend, backend, backend],
      periodMs: 60_000,
      advance: (ms) => clock.advance(ms),
      stored: (prefix, key) => backend.has(prefix, key),
    };
  },
});

describe('MemoryBackend', () => {
  it('caps the number of keys per limiter by forgetting the oldest in the rotation', async () => {
    const clock = new ManualClock();
    const backend = new MemoryBackend({ clock, maxKeys: 3 });
    const limiter = createRateLimiter({ limit: 1, periodMs: 60_000, backend, prefix: 'cap' });
    for (const key of ['a', 'b', 'c']) expect((await limiter.consume(key)).allowed).toBe(true);
    expect((await limiter.consume('a')).allowed).toBe(false);
    expect((await limiter.consume('d')).allowed).toBe(true);
    expect(backend.size).toBe(3);
    expect(backend.has('cap', 'a')).toBe(false);
    expect(backend.has('cap', 'b')).toBe(true);
    expect((await limiter.consume('b')).allowed).toBe(false);
  });

  it('drops drained keys lazily when new keys arrive, with no timer', async () => {
    const clock = new ManualClock();
    const backend = new MemoryBackend({ clock });
    const limiter = createRateLimiter({ limit: 10, periodMs: 1_000, backend, prefix: 'lazy' });
    for (let index = 0; index < 6; index += 1) await limiter.consume(`old-${index}`);
    expect(backend.size).toBe(6);
    clock.advance(1_000);
    // Each new key looks at the two least recently charged keys.
    await limiter.consume('new-1');
    expect(backend.size).toBe(5);
    await limiter.consume('new-2');
    await limiter.consume('new-3');
    expect(backend.size).toBe(3);
    expect(backend.has('lazy', 'old-5')).toBe(false);
  });

  it('keeps a charged key until its backlog has drained', async () => {
    const clock = new ManualClock();
    const backend = new MemoryBackend({ clock });
    const limiter = createRateLimiter({ limit: 10, periodMs: 1_000, backend, prefix: 'keep' });
    await limiter.consume('a', { cost: 5 });
    clock.advance(499);
    await limiter.consume('b');
    expect(backend.has('keep', 'a')).toBe(true);
    expect(await limiter.peek('a')).toEqual({
      allowed: true,
      remaining: 9,
      retryAfterMs: 0,
      resetAfterMs: 1,
    });
    clock.advance(1);
    expect(await limiter.peek('a')).toEqual({
      allowed: true,
      remaining: 10,
      retryAfterMs: 0,
      resetAfterMs: 0,
    });
    // Reading a drained key does not write; the next new key sweeps it.
    expect(backend.has('keep', 'a')).toBe(true);
    await limiter.consume('c');
    expect(backend.has('keep', 'a')).toBe(false);
    expect(backend.has('keep', 'b')).toBe(true);
  });

  it('rejects a bad maxKeys with a typed error', () => {
    for (const maxKeys of [0, -1, 1.5, Number.NaN]) {
      expect(() => new MemoryBackend({ maxKeys })).toThrowError(
        expect.objectContaining({ code: 'INVALID_OPTION', option: 'maxKeys' }) as Error,
      );
    }
    expect(RateLimitError.isInstance(new RateLimitError('INVALID_OPTION', 'x'))).toBe(true);
  });

  it('uses the wall clock by default', async () => {
    const limiter = createRateLimiter({ limit: 1, periodMs: 60_000 });
    expect((await limiter.consume('k')).allowed).toBe(true);
    const denied = await limiter.consume('k');
    expect(denied.allowed).toBe(false);
    expect(denied.retryAfterMs).toBeGreaterThan(59_000);
  });
});
