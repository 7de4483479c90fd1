import { describe, expect, it, vi } from 'vitest';
import type { BackendDecision, BackendMode, BackendRequest, RateLimitBackend } from './backend.js';
import { RateLimitError } from './errors.js';
import { combine, createRateLimiter } from './limiter.js';
import { MemoryBackend } from './memory-backend.js';
import { ManualClock } from './testing.js';

function expectCode(action: () => unknown, code: string, option: string): void {
  let caught: unknown;
  try {
    action();
  } catch (error) {
    caught = error;
  }
  expect(RateLimitError.isInstance(caught)).toBe(true);
  expect(caught).toMatchObject({ code, option });
}

async function expectRejection(
  promise: Promise<unknown>,
  code: string,
  option: string,
): Promise<void> {
  const error: unknown = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(RateLimitError.isInstance(error)).toBe(true);
  expect(error).toMatchObject({ code, option });
}

describe('createRateLimiter options', () => {
  it.each([0, -1, Number.NaN, Number.POSITIVE_INFINITY, '5' as unknown as number])(
    'rejects limit %s',
    (limit) => {
      expectCode(() => createRateLimiter({ limit, periodMs: 1_000 }), 'INVALID_OPTION', 'limit');
    },
  );

  it.each([0, -5, Number.NaN, Number.POSITIVE_INFINITY])('rejects periodMs %s', (periodMs) => {
    expectCode(() => createRateLimiter({ limit: 1, periodMs }), 'INVALID_OPTION', 'periodMs');
  });

  it('rejects a burst below one call, or so long the numbers would lose precision', () => {
    expectCode(
      () => createRateLimiter({ limit: 10, periodMs: 1_000, burst: 0.5 }),
      'INVALID_OPTION',
      'burst',
    );
    expectCode(
      () => createRateLimiter({ limit: 10, periodMs: 1_000, burst: -1 }),
      'INVALID_OPTION',
      'burst',
    );
    expectCode(
      () => createRateLimiter({ limit: 1, periodMs: 1e12, burst: 10 }),
      'INVALID_OPTION',
      'burst',
    );
  });

  it('defaults the burst to one call when the limit is below one', async () => {
    const clock = new ManualClock();
    const limiter = createRateLimiter({
      limit: 0.5,
      periodMs: 3_600_000,
      backend: new MemoryBackend({ clock }),
    });
    expect(limiter.burst).toBe(1);
    expect((await limiter.consume('k')).allowed).toBe(true);
    expect(await limiter.consume('k')).toEqual({
      allowed: false,
      remaining: 0,
      retryAfterMs: 7_200_000,
      resetAfterMs: 7_200_000,
    });
    clock.advance(7_200_000);
    expect((await limiter.consume('k')).allowed).toBe(true);
  });

  it('names periodMs, not a burst the caller never passed, when the period is too long', () => {
    expectCode(
      () => createRateLimiter({ limit: 10, periodMs: 1e300 }),
      'INVALID_OPTION',
      'periodMs',
    );
    expectCode(
      () => createRateLimiter({ limit: 0.001, periodMs: 1e12 }),
      'INVALID_OPTION',
      'periodMs',
    );
  });

  it('rejects a rate finer than one call per microsecond', () => {
    expectCode(() => createRateLimiter({ limit: 10_000, periodMs: 1 }), 'INVALID_OPTION', 'limit');
  });

  it.each(['', 'has space', 'a{b', 'a}b', 'quote"', 'back\\slash', 'x'.repeat(101), 'é'])(
    'rejects prefix %j',
    (prefix) => {
      expectCode(
        () => createRateLimiter({ limit: 1, periodMs: 1_000, prefix }),
        'INVALID_OPTION',
        'prefix',
      );
    },
  );

  it('rejects a bad maxKeyLength and a missing options object', () => {
    expectCode(
      () => createRateLimiter({ limit: 1, periodMs: 1_000, maxKeyLength: 0 }),
      'INVALID_OPTION',
      'maxKeyLength',
    );
    expectCode(() => createRateLimiter(undefined as never), 'INVALID_OPTION', 'options');
  });

  it('names its defaults', () => {
    const limiter = createRateLimiter({ limit: 10, periodMs: 60_000 });
    expect(limiter).toMatchObject({
      limit: 10,
      periodMs: 60_000,
      burst: 10,
      prefix: 'rl:10:60000:10',
    });
    expect(limiter.backend).toBeInstanceOf(MemoryBackend);
  });
});

describe('consume, peek and reset input', () => {
  const limiter = createRateLimiter({ limit: 5, periodMs: 1_000, maxKeyLength: 8 });

  it('rejects empty, over-long and non-string keys with INVALID_KEY', async () => {
    await expectRejection(limiter.consume(''), 'INVALID_KEY', 'key');
    await expectRejection(limiter.consume('123456789'), 'INVALID_KEY', 'key');
    await expectRejection(limiter.peek(42 as unknown as string), 'INVALID_KEY', 'key');
    await expectRejection(limiter.reset(''), 'INVALID_KEY', 'key');
    expect((await limiter.consume('12345678')).allowed).toBe(true);
  });

  it('rejects keys that are not well-formed UTF-16 with INVALID_KEY', async () => {
    // Redis stores keys as UTF-8, where every lone surrogate becomes U+FFFD: they would share state.
    for (const key of ['\uD800', '\uDBFF', 'a\uDC00', '\uDE00\uD83D']) {
      await expectRejection(limiter.consume(key), 'INVALID_KEY', 'key');
      await expectRejection(limiter.peek(key), 'INVALID_KEY', 'key');
      await expectRejection(limiter.reset(key), 'INVALID_KEY', 'key');
      await expectRejection(combine(limiter).consume(key), 'INVALID_KEY', 'key');
      await expectRejection(combine(limiter).reset(key), 'INVALID_KEY', 'key');
    }
    const backend = new MemoryBackend({ clock: new ManualClock() });
    const other = createRateLimiter({ limit: 1, periodMs: 1_000, backend });
    await expectRejection(other.consume('\uD800'), 'INVALID_KEY', 'key');
    expect((await other.consume('\uD83D\uDE00')).allowed).toBe(true);
    expect((await other.consume('\uFFFD')).allowed).toBe(true);
  });

  it.each([0, -1, Number.NaN, Number.POSITIVE_INFINITY, '2' as unknown as number])(
    'rejects cost %s',
    async (cost) => {
      await expectRejection(limiter.consume('k', { cost }), 'INVALID_COST', 'cost');
    },
  );

  it('rejects a cost above the burst, which could never pass', async () => {
    await expectRejection(limiter.consume('k', { cost: 5.5 }), 'INVALID_COST', 'cost');
    expect((await limiter.consume('k', { cost: 5 })).allowed).toBe(true);
  });

  it('charges fractional costs exactly', async () => {
    const clock = new ManualClock();
    const precise = createRateLimiter({
      limit: 3,
      periodMs: 1_000,
      backend: new MemoryBackend({ clock }),
    });
    // 1000/3 ms per call: three calls of cost 1 fill the bucket with no rounding leftovers.
    for (let call = 0; call < 3; call += 1) expect((await precise.consume('k')).allowed).toBe(true);
    expect((await precise.consume('k', { cost: 0.01 })).allowed).toBe(false);
    clock.advance(500);
    expect(await precise.consume('k', { cost: 1.5 })).toEqual({
      allowed: true,
      remaining: 0,
      retryAfterMs: 0,
      resetAfterMs: 1_000,
    });
  });

  it('is smooth: after the burst, calls pass one per periodMs / limit, never a second burst', async () => {
    const clock = new ManualClock();
    const limiter10 = createRateLimiter({
      limit: 10,
      periodMs: 10_000,
      backend: new MemoryBackend({ clock }),
    });
    let allowed = 0;
    for (let second = 0; second < 30; second += 1) {
      for (let call = 0; call < 20; call += 1)
        if ((await limiter10.consume('k')).allowed) allowed += 1;
      clock.advance(1_000);
    }
    // The burst of 10, then one per second for the 29 seconds that followed.
    expect(allowed).toBe(10 + 29);
  });

  it('honours a burst smaller than the limit', async () => {
    const clock = new ManualClock();
    const limiter = createRateLimiter({
      limit: 60,
      periodMs: 60_000,
      burst: 2,
      backend: new MemoryBackend({ clock }),
    });
    expect((await limiter.consume('k')).remaining).toBe(1);
    expect((await limiter.consume('k')).remaining).toBe(0);
    const denied = await limiter.consume('k');
    expect(denied).toEqual({
      allowed: false,
      remaining: 0,
      retryAfterMs: 1_000,
      resetAfterMs: 2_000,
    });
  });
});

/** A backend that answers what the test says, to reach the limiter's handling of odd answers. */
class ScriptedBackend implements RateLimitBackend {
  constructor(
    private readonly answer: (
      requests: readonly BackendRequest[],
      mode: BackendMode,
    ) => BackendDecision | Promise<BackendDecision>,
  ) {}
  apply(
    requests: readonly BackendRequest[],
    mode: BackendMode,
  ): BackendDecision | Promise<BackendDecision> {
    return this.answer(requests, mode);
  }
  reset(): void {}
}

describe('third-party backends', () => {
  it('accepts asynchronous answers', async () => {
    const limiter = createRateLimiter({
      limit: 2,
      periodMs: 1_000,
      backend: new ScriptedBackend(async () => Promise.resolve({ allowed: true, backlogUs: [0] })),
    });
    expect(await limiter.consume('k')).toEqual({
      allowed: true,
      remaining: 1,
      retryAfterMs: 0,
      resetAfterMs: 500,
    });
  });

  it('rejects an answer with the wrong number of backlogs as BACKEND_ERROR', async () => {
    const backend = new ScriptedBackend(() => ({ allowed: true, backlogUs: [] }));
    const limiter = createRateLimiter({ limit: 2, periodMs: 1_000, backend });
    await expect(limiter.consume('k')).rejects.toMatchObject({ code: 'BACKEND_ERROR' });
    const both = combine(
      limiter,
      createRateLimiter({ limit: 1, periodMs: 1_000, backend, prefix: 'other' }),
    );
    await expect(both.consume('k')).rejects.toMatchObject({ code: 'BACKEND_ERROR' });
  });

  it('turns a backend that throws synchronously into a rejection', async () => {
    const backend = new ScriptedBackend(() => {
      throw new Error('boom');
    });
    await expect(
      createRateLimiter({ limit: 2, periodMs: 1_000, backend }).consume('k'),
    ).rejects.toThrow('boom');
  });
});

describe('combine', () => {
  it('needs limiters of createRateLimiter on one backend with distinct prefixes', () => {
    const backend = new MemoryBackend();
    const a = createRateLimiter({ limit: 1, periodMs: 1_000, backend, prefix: 'a' });
    expectCode(() => combine(), 'INVALID_OPTION', 'limiters');
    expectCode(
      () => combine(a, createRateLimiter({ limit: 1, periodMs: 1_000, prefix: 'b' })),
      'INVALID_OPTION',
      'limiters',
    );
    expectCode(
      () => combine(a, createRateLimiter({ limit: 2, periodMs: 1_000, backend, prefix: 'a' })),
      'INVALID_OPTION',
      'limiters',
    );
    expectCode(() => combine(a, { ...a }), 'INVALID_OPTION', 'limiters');
  });

  it('combines limiters made by another copy of the package (its CJS and ESM builds)', async () => {
    vi.resetModules();
    const copy = await import('./limiter.js');
    expect(copy.createRateLimiter).not.toBe(createRateLimiter);
    const backend = new MemoryBackend({ clock: new ManualClock() });
    const ours = createRateLimiter({ limit: 2, periodMs: 1_000, backend, prefix: 'ours' });
    const theirs = copy.createRateLimiter({ limit: 1, periodMs: 1_000, backend, prefix: 'theirs' });
    const both = combine(ours, theirs);
    expect((await both.consume('k')).results.map((result) => result.remaining)).toEqual([1, 0]);
    expect((await copy.combine(theirs, ours).consume('k')).allowed).toBe(false);
    expectCode(() => combine(ours, { ...theirs }), 'INVALID_OPTION', 'limiters');
    // The brand alone is not enough: combine needs what a limiter has.
    const brand = Symbol.for('postern.rate-limit.limiter');
    const forged = { [brand]: 1, backend, prefix: 'forged' } as unknown as typeof ours;
    expectCode(() => combine(ours, forged), 'INVALID_OPTION', 'limiters');
  });

  it('reports the binding limit and peeks without charging', async () => {
    const clock = new ManualClock();
    const backend = new MemoryBackend({ clock });
    const short = createRateLimiter({ limit: 2, periodMs: 1_000, backend, prefix: 'short' });
    const long = createRateLimiter({ limit: 3, periodMs: 60_000, backend, prefix: 'long' });
    const both = combine(short, long);
    const first = await both.consume('k');
    expect(first).toMatchObject({
      allowed: true,
      remaining: 1,
      retryAfterMs: 0,
      resetAfterMs: 20_000,
    });
    expect(first.results.map((result) => result.remaining)).toEqual([1, 2]);
    const peeked = await both.peek('k', { cost: 2 });
    expect(peeked.allowed).toBe(false);
    expect(peeked.retryAfterMs).toBe(500);
    expect((await both.peek('k')).remaining).toBe(1);
    await expect(both.consume('', {})).rejects.toMatchObject({ code: 'INVALID_KEY' });
    await expect(both.reset('')).rejects.toMatchObject({ code: 'INVALID_KEY' });
  });
});

describe('abort signals', () => {
  it('rejects at once with the reason when the signal is already aborted, charging nothing', async () => {
    const limiter = createRateLimiter({ limit: 1, periodMs: 60_000 });
    const reason = new Error('client went away');
    await expect(limiter.consume('k', { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    const both = combine(limiter);
    await expect(both.consume('k', { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect((await limiter.consume('k')).allowed).toBe(true);
  });

  it('stops waiting for a slow backend when the signal aborts', async () => {
    let answer: (decision: BackendDecision) => void = () => undefined;
    const backend = new ScriptedBackend(
      () => new Promise<BackendDecision>((resolve) => (answer = resolve)),
    );
    const limiter = createRateLimiter({ limit: 2, periodMs: 1_000, backend });
    const controller = new AbortController();
    const pending = limiter.consume('k', { signal: controller.signal });
    controller.abort(new Error('deadline'));
    await expect(pending).rejects.toThrow('deadline');
    answer({ allowed: true, backlogUs: [0] });

    const kept = new AbortController();
    const passing = combine(limiter).consume('k', { signal: kept.signal });
    answer({ allowed: true, backlogUs: [0] });
    expect((await passing).allowed).toBe(true);
    const failing = limiter.consume('k', { signal: kept.signal });
    await Promise.resolve();
    answer({ allowed: true, backlogUs: [] });
    await expect(failing).rejects.toMatchObject({ code: 'BACKEND_ERROR' });
  });
});
