import { getEventListeners } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { circuitBreaker, InvalidOptionError, retry, timeout, TimeoutError, wrap } from './index.js';
import type { ExecuteContext } from './index.js';
import { ManualClock } from './testing.js';

function never(context: ExecuteContext): Promise<never> {
  return new Promise((_, reject) => {
    context.signal.addEventListener('abort', () => reject(new Error('aborted inside')), {
      once: true,
    });
  });
}

afterEach(() => {
  vi.useRealTimers();
});

describe('timeout', () => {
  it('works with just a number and resolves what fn resolves', async () => {
    await expect(timeout(1_000).execute(() => Promise.resolve(7))).resolves.toBe(7);
    await expect(timeout(1_000).execute(() => 8)).resolves.toBe(8);
  });

  it('aggressive: aborts the signal and rejects at once, even if fn ignores the signal', async () => {
    const clock = new ManualClock();
    const policy = timeout({ timeoutMs: 100, clock });
    let signal: AbortSignal | undefined;
    const call = policy.execute((context) => {
      signal = context.signal;
      return new Promise(() => {});
    });
    clock.advance(99);
    expect(signal?.aborted).toBe(false);
    clock.advance(1);
    const error = await call.catch((e: unknown) => e);
    expect(TimeoutError.isInstance(error)).toBe(true);
    expect((error as TimeoutError).timeoutMs).toBe(100);
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toBe(error);
    expect(clock.pendingTimers).toBe(0);
  });

  it('cooperative: aborts the signal, then rejects with TimeoutError once fn settles', async () => {
    const clock = new ManualClock();
    const policy = timeout({ timeoutMs: 100, clock, strategy: 'cooperative' });
    let settle!: () => void;
    let settled = false;
    const call = policy.execute(
      (context) =>
        new Promise<string>((resolve) => {
          settle = () => resolve(context.signal.aborted ? 'saw abort' : 'no abort');
        }),
    );
    const markSettled = (): void => {
      settled = true;
    };
    void call.then(markSettled, markSettled);
    clock.advance(100);
    await Promise.resolve();
    expect(settled).toBe(false);
    settle();
    await expect(call).rejects.toThrow(TimeoutError);
  });

  it('cooperative: a rejection after the timeout becomes the TimeoutError', async () => {
    const clock = new ManualClock();
    const policy = timeout({ timeoutMs: 10, clock, strategy: 'cooperative' });
    const call = policy.execute(never);
    clock.advance(10);
    await expect(call).rejects.toBeInstanceOf(TimeoutError);
  });

  it('reads the signal lazily: a signal read after the timeout is already aborted', async () => {
    const clock = new ManualClock();
    const policy = timeout({ timeoutMs: 10, clock, strategy: 'cooperative' });
    let later!: () => boolean;
    const call = policy.execute(
      (context) =>
        new Promise<void>((resolve) => {
          later = () => {
            resolve();
            return context.signal.aborted;
          };
        }),
    );
    clock.advance(10);
    expect(later()).toBe(true);
    await expect(call).rejects.toBeInstanceOf(TimeoutError);
  });

  it('the caller signal aborts it and keeps the caller reason', async () => {
    const controller = new AbortController();
    const reason = new Error('caller gave up');
    const policy = timeout(10_000);
    let inner: AbortSignal | undefined;
    const call = policy.execute((context) => {
      inner = context.signal;
      return new Promise(() => {});
    }, controller.signal);
    controller.abort(reason);
    await expect(call).rejects.toBe(reason);
    expect(inner?.aborted).toBe(true);
    expect(inner?.reason).toBe(reason);
  });

  it('an already-aborted caller signal rejects without running fn', async () => {
    let ran = false;
    const reason = new Error('before');
    await expect(
      timeout(10).execute(() => {
        ran = true;
      }, AbortSignal.abort(reason)),
    ).rejects.toBe(reason);
    expect(ran).toBe(false);
  });

  it('never aborts the signal after fn succeeded (a body read after the call still works)', async () => {
    const clock = new ManualClock();
    const controller = new AbortController();
    let signal: AbortSignal | undefined;
    const value = await timeout({ timeoutMs: 10, clock }).execute((context) => {
      signal = context.signal;
      return 'response';
    }, controller.signal);
    expect(value).toBe('response');
    clock.advance(1_000);
    controller.abort();
    expect(signal?.aborted).toBe(false);
  });

  it('passes through rejections of fn that finish in time', async () => {
    await expect(timeout(1_000).execute(() => Promise.reject(new Error('own')))).rejects.toThrow(
      'own',
    );
    await expect(
      timeout(1_000).execute(() => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
  });

  it('fires onTimeout only on timeouts', async () => {
    const clock = new ManualClock();
    const policy = timeout({ timeoutMs: 5, clock });
    const fired: number[] = [];
    const subscription = policy.onTimeout(({ timeoutMs }) => fired.push(timeoutMs));
    await policy.execute(() => 1);
    const call = policy.execute(() => new Promise(() => {}));
    clock.advance(5);
    await expect(call).rejects.toThrow(TimeoutError);
    subscription.dispose();
    expect(fired).toEqual([5]);
  });

  it('unref lets the process exit while waiting', async () => {
    vi.useFakeTimers();
    const unref = vi.fn();
    const original = globalThis.setTimeout;
    const spy = vi.spyOn(globalThis, 'setTimeout').mockImplementation(((
      callback: () => void,
      ms: number,
    ) => {
      const timer = original(callback, ms);
      timer.unref = unref.mockReturnValue(timer);
      return timer;
    }) as typeof setTimeout);
    await timeout({ timeoutMs: 50, unref: true }).execute(() => 1);
    await timeout({ timeoutMs: 50 }).execute(() => 1);
    spy.mockRestore();
    expect(unref).toHaveBeenCalledTimes(1);
  });

  it('works with fake timers through the system clock', async () => {
    vi.useFakeTimers();
    const call = timeout(1_000).execute(() => new Promise(() => {}));
    vi.advanceTimersByTime(1_000);
    await expect(call).rejects.toBeInstanceOf(TimeoutError);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('rejects invalid options naming the option', () => {
    expect(() => timeout(0)).toThrow(InvalidOptionError);
    expect(() => timeout(Number.NaN)).toThrow(/"timeoutMs"/);
    expect(() => timeout(-1)).toThrow(/"timeoutMs"/);
    expect(() => timeout({ timeoutMs: 5, strategy: 'sometimes' as never })).toThrow(/"strategy"/);
  });
});

describe('no leaks', () => {
  it('10,000 calls under one long-lived caller signal leave no listener on it and no open timer', async () => {
    const controller = new AbortController();
    const policy = wrap(
      retry({ maxAttempts: 2, initialDelayMs: 0 }),
      circuitBreaker(),
      timeout(60_000),
    );
    const aggressive = timeout(60_000);
    const cooperative = timeout({ timeoutMs: 60_000, strategy: 'cooperative' });
    const timersBefore = process
      .getActiveResourcesInfo()
      .filter((name) => name === 'Timeout').length;
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => {
      warnings.push(warning);
    };
    process.on('warning', onWarning);
    for (let i = 0; i < 10_000; i++) {
      const policyForCall = i % 3 === 0 ? policy : i % 3 === 1 ? aggressive : cooperative;
      // Every call reads its signal and listens on it, as fetch would.
      await policyForCall.execute(async ({ signal }) => {
        const onAbort = (): void => {};
        signal.addEventListener('abort', onAbort);
        await Promise.resolve();
        signal.removeEventListener('abort', onAbort);
        return i;
      }, controller.signal);
    }
    await new Promise((resolve) => setImmediate(resolve));
    process.off('warning', onWarning);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    const timersAfter = process
      .getActiveResourcesInfo()
      .filter((name) => name === 'Timeout').length;
    expect(timersAfter).toBe(timersBefore);
    expect(
      warnings.filter((warning) => warning.name === 'MaxListenersExceededWarning'),
    ).toHaveLength(0);
  });
});

describe('timeout after the caller aborted', () => {
  it('cooperative: a caller abort keeps the caller reason even if the timer fires before fn settles', async () => {
    const clock = new ManualClock();
    const policy = timeout({ timeoutMs: 100, strategy: 'cooperative', clock });
    const timeouts: number[] = [];
    policy.onTimeout(({ timeoutMs }) => timeouts.push(timeoutMs));
    const controller = new AbortController();
    let finish!: () => void;
    const call = policy.execute(
      ({ signal }) =>
        new Promise((_, reject) => {
          // Slow to notice: settles only when the test says so, with the signal's reason.
          finish = () => reject(signal.reason as Error);
        }),
      controller.signal,
    );
    const reason = new Error('client went away');
    controller.abort(reason);
    clock.advance(100);
    finish();
    await expect(call).rejects.toBe(reason);
    expect(timeouts).toEqual([]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('rejects an unknown strategy with InvalidOptionError (code INVALID_OPTION)', () => {
    let thrown: unknown;
    try {
      timeout({ timeoutMs: 10, strategy: 'eager' as never });
    } catch (error) {
      thrown = error;
    }
    expect(InvalidOptionError.isInstance(thrown)).toBe(true);
    expect(thrown).toMatchObject({ code: 'INVALID_OPTION', option: 'strategy' });
  });
});
