import { describe, expect, it } from 'vitest';
import {
  BrokenCircuitError,
  BulkheadRejectedError,
  InvalidOptionError,
  retry,
  RetryExhaustedError,
} from './index.js';
import type { RetryEvent } from './index.js';
import { ManualClock } from './testing.js';

/** Lets pending promise reactions run (retry awaits between attempts). */
async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

function failing(
  times: number,
  error: () => Error = () => new Error('flaky'),
): { fn: () => Promise<string>; calls: () => number } {
  let calls = 0;
  return {
    fn: () => {
      calls++;
      return calls <= times ? Promise.reject(error()) : Promise.resolve(`ok after ${calls}`);
    },
    calls: () => calls,
  };
}

describe('retry', () => {
  it('works with defaults: 3 attempts with full-jitter backoff', async () => {
    const clock = new ManualClock();
    const policy = retry({ clock, random: () => 1 });
    const work = failing(2);
    const call = policy.execute(work.fn);
    await flush();
    expect(work.calls()).toBe(1);
    clock.advance(100);
    await flush();
    expect(work.calls()).toBe(2);
    clock.advance(199);
    await flush();
    expect(work.calls()).toBe(2);
    clock.advance(1);
    await expect(call).resolves.toBe('ok after 3');
  });

  it('passes the attempt number to fn', async () => {
    const attempts: number[] = [];
    const policy = retry({ maxAttempts: 3, initialDelayMs: 0 });
    await policy.execute(({ attempt }) => {
      attempts.push(attempt);
      return attempt < 3 ? Promise.reject(new Error('again')) : Promise.resolve();
    });
    expect(attempts).toEqual([1, 2, 3]);
  });

  it('gives up with RetryExhaustedError carrying attempts and lastError', async () => {
    const policy = retry({ maxAttempts: 3, initialDelayMs: 0 });
    let n = 0;
    const error = await policy
      .execute(() => Promise.reject(new Error(`failure ${++n}`)))
      .catch((e: unknown) => e);
    expect(RetryExhaustedError.isInstance(error)).toBe(true);
    const exhausted = error as RetryExhaustedError;
    expect(exhausted.attempts).toBe(3);
    expect((exhausted.lastError as Error).message).toBe('failure 3');
    expect(exhausted.cause).toBe(exhausted.lastError);
    expect(exhausted.reason).toBe('attempts');
  });

  it('rethrows errors retryOn declines, unchanged, without retrying', async () => {
    const policy = retry({ initialDelayMs: 0, retryOn: (error) => !(error instanceof RangeError) });
    const work = failing(5, () => new RangeError('bad request'));
    await expect(policy.execute(work.fn)).rejects.toBeInstanceOf(RangeError);
    expect(work.calls()).toBe(1);
  });

  it('does not retry BrokenCircuitError or BulkheadRejectedError unless asked', async () => {
    const policy = retry({ initialDelayMs: 0 });
    const open = failing(1, () => new BrokenCircuitError(10));
    await expect(policy.execute(open.fn)).rejects.toBeInstanceOf(BrokenCircuitError);
    expect(open.calls()).toBe(1);
    const full = failing(1, () => new BulkheadRejectedError(1, 0));
    await expect(policy.execute(full.fn)).rejects.toBeInstanceOf(BulkheadRejectedError);
    expect(full.calls()).toBe(1);
  });

  it('when asked to retry rejections, waits at least their retryAfterMs', async () => {
    const clock = new ManualClock();
    const policy = retry({ clock, retryRejections: true, initialDelayMs: 1, jitter: 'none' });
    const work = failing(1, () => new BrokenCircuitError(5_000));
    const call = policy.execute(work.fn);
    await flush();
    clock.advance(4_999);
    await flush();
    expect(work.calls()).toBe(1);
    clock.advance(1);
    await expect(call).resolves.toBe('ok after 2');
  });

  it('honours a retryAfterMs on any error, and gives up when it exceeds maxDelayMs', async () => {
    const clock = new ManualClock();
    const policy = retry({ clock, initialDelayMs: 1, maxDelayMs: 1_000, jitter: 'none' });
    const throttled = failing(1, () => Object.assign(new Error('429'), { retryAfterMs: 300 }));
    const call = policy.execute(throttled.fn);
    await flush();
    clock.advance(299);
    await flush();
    expect(throttled.calls()).toBe(1);
    clock.advance(1);
    await expect(call).resolves.toBe('ok after 2');

    const tooLong = failing(1, () => Object.assign(new Error('503'), { retryAfterMs: 60_000 }));
    const error = (await policy
      .execute(tooLong.fn)
      .catch((e: unknown) => e)) as RetryExhaustedError;
    expect(error.reason).toBe('retry-after');
    expect(tooLong.calls()).toBe(1);
    // isolated circuits say Infinity: never waited for.
    const isolated = failing(1, () => new BrokenCircuitError(Infinity, true));
    const rejection = await retry({ retryRejections: true })
      .execute(isolated.fn)
      .catch((e: unknown) => e);
    expect((rejection as RetryExhaustedError).reason).toBe('retry-after');
  });

  it('computes exponential, full-jitter and decorrelated delays, capped at maxDelayMs', async () => {
    const delays = async (
      options: Parameters<typeof retry>[0],
      random: number[],
    ): Promise<number[]> => {
      const seen: number[] = [];
      let i = 0;
      const policy = retry({
        ...options,
        random: () => random[i++ % random.length]!,
        maxAttempts: 5,
        clock: new ManualClock(),
      });
      policy.onRetry((event: RetryEvent) => seen.push(event.delayMs));
      const clock = (policy as unknown as { clock: ManualClock }).clock;
      const call = policy.execute(() => Promise.reject(new Error('x'))).catch(() => undefined);
      for (let step = 0; step < 5; step++) {
        await flush();
        clock.advance(10_000);
      }
      await call;
      return seen;
    };
    expect(await delays({ initialDelayMs: 100, jitter: 'none', maxDelayMs: 500 }, [0.5])).toEqual([
      100, 200, 400, 500,
    ]);
    expect(await delays({ initialDelayMs: 100, jitter: 'full', maxDelayMs: 500 }, [0.5])).toEqual([
      50, 100, 200, 250,
    ]);
    // decorrelated: uniform in [initial, 3 × previous], capped.
    expect(
      await delays({ initialDelayMs: 100, jitter: 'decorrelated', maxDelayMs: 1_000 }, [1]),
    ).toEqual([300, 900, 1_000, 1_000]);
    expect(
      await delays({ initialDelayMs: 100, jitter: 'decorrelated', maxDelayMs: 1_000 }, [0]),
    ).toEqual([100, 100, 100, 100]);
  });

  it('an abort during the wait rejects at once with the caller reason and leaves no timer', async () => {
    const clock = new ManualClock();
    const policy = retry({ clock, initialDelayMs: 1_000, jitter: 'none' });
    const controller = new AbortController();
    const work = failing(5);
    const call = policy.execute(work.fn, controller.signal);
    await flush();
    expect(clock.pendingTimers).toBe(1);
    const reason = new Error('stop');
    controller.abort(reason);
    await expect(call).rejects.toBe(reason);
    expect(clock.pendingTimers).toBe(0);
    expect(work.calls()).toBe(1);
  });

  it('stops at once when the caller aborted during an attempt', async () => {
    const controller = new AbortController();
    const reason = new Error('stop');
    const policy = retry({ initialDelayMs: 0 });
    let calls = 0;
    await expect(
      policy.execute(() => {
        calls++;
        controller.abort(reason);
        return Promise.reject(new Error('aborted fetch'));
      }, controller.signal),
    ).rejects.toBe(reason);
    expect(calls).toBe(1);
  });

  it('a budget limits retries to a share of calls', async () => {
    const policy = retry({ initialDelayMs: 0, maxAttempts: 5, budget: { ratio: 0.5, reserve: 2 } });
    expect(policy.budgetRemaining).toBe(2);
    const work = failing(100);
    const error = (await policy.execute(work.fn).catch((e: unknown) => e)) as RetryExhaustedError;
    // 2 in reserve: first call + 2 retries, then the budget is spent.
    expect(error.reason).toBe('budget');
    expect(work.calls()).toBe(3);
    // Each new call earns half a retry: two calls earn one.
    const second = failing(100);
    await policy.execute(second.fn).catch(() => undefined);
    expect(second.calls()).toBe(1);
    const third = failing(100);
    await policy.execute(third.fn).catch(() => undefined);
    expect(third.calls()).toBe(2);
    expect(policy.budgetRemaining).toBe(0);
    let giveUps = 0;
    policy.onGiveUp(() => giveUps++);
    await policy.execute(failing(1).fn).catch(() => undefined);
    expect(giveUps).toBe(1);
  });

  it('retryOnResult retries on a value (an HTTP 503) and returns the last value when attempts run out', async () => {
    const seen: RetryEvent[] = [];
    const policy = retry({
      maxAttempts: 3,
      initialDelayMs: 0,
      retryOnResult: (value) => (value as { status: number }).status >= 500,
    });
    policy.onRetry((event) => seen.push(event));
    let calls = 0;
    const recovered = await policy.execute(() => ({ status: ++calls < 2 ? 503 : 200 }));
    expect(recovered).toEqual({ status: 200 });
    expect(seen).toEqual([{ attempt: 1, delayMs: 0, error: undefined, result: { status: 503 } }]);
    calls = 0;
    const last = await policy.execute(() => ({ status: 500 + ++calls }));
    expect(last).toEqual({ status: 503 });
    expect(calls).toBe(3);
  });

  it('dispose cancels pending waits', async () => {
    const clock = new ManualClock();
    const policy = retry({ clock, initialDelayMs: 1_000, jitter: 'none' });
    const call = policy.execute(failing(5).fn);
    await flush();
    await policy[Symbol.asyncDispose]();
    await expect(call).rejects.toThrow('disposed');
    expect(clock.pendingTimers).toBe(0);
  });

  it('dispose rejects pending waits with RetryExhaustedError (reason disposed), not a plain Error', async () => {
    const clock = new ManualClock();
    const policy = retry({ clock, initialDelayMs: 1_000, jitter: 'none' });
    const givenUp: RetryExhaustedError[] = [];
    policy.onGiveUp((error) => givenUp.push(error));
    const last = new Error('relay down');
    const afterError = policy.execute(() => Promise.reject(last));
    const afterResult = retry({
      clock,
      initialDelayMs: 1_000,
      jitter: 'none',
      retryOnResult: (value) => value === 503,
    });
    const resultCall = afterResult.execute(() => 503);
    await flush();
    expect(clock.pendingTimers).toBe(2);
    await policy[Symbol.asyncDispose]();
    await afterResult[Symbol.asyncDispose]();
    const error = await afterError.catch((caught: unknown) => caught);
    expect(RetryExhaustedError.isInstance(error)).toBe(true);
    expect(error).toBeInstanceOf(RetryExhaustedError);
    expect(error).toMatchObject({
      code: 'RETRY_EXHAUSTED',
      name: 'RetryExhaustedError',
      reason: 'disposed',
      attempts: 1,
      lastError: last,
      cause: last,
    });
    expect(givenUp).toEqual([error]);
    await expect(resultCall).rejects.toMatchObject({
      code: 'RETRY_EXHAUSTED',
      reason: 'disposed',
      attempts: 1,
      lastError: undefined,
    });
    expect(clock.pendingTimers).toBe(0);
    // Disposal ends the waits of that moment; the policy still serves new calls.
    await expect(policy.execute(() => 'after')).resolves.toBe('after');
  });

  it('rejects invalid options naming the option', () => {
    const bad: Array<[string, () => unknown]> = [
      ['maxAttempts', () => retry({ maxAttempts: 0 })],
      ['maxAttempts', () => retry({ maxAttempts: 1.5 })],
      ['initialDelayMs', () => retry({ initialDelayMs: -1 })],
      ['maxDelayMs', () => retry({ initialDelayMs: 100, maxDelayMs: 10 })],
      ['factor', () => retry({ factor: 0.5 })],
      ['jitter', () => retry({ jitter: 'some' as never })],
      ['retryOn', () => retry({ retryOn: 1 as never })],
      ['retryOnResult', () => retry({ retryOnResult: 1 as never })],
      ['budget.ratio', () => retry({ budget: { ratio: Number.NaN } })],
      ['budget.reserve', () => retry({ budget: { reserve: -1 } })],
    ];
    for (const [option, build] of bad) {
      expect(build).toThrow(InvalidOptionError);
      expect(build).toThrow(`"${option}"`);
    }
  });
});
