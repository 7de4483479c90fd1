import { getEventListeners } from 'node:events';
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  BrokenCircuitError,
  bulkhead,
  circuitBreaker,
  fallback,
  retry,
  RetryExhaustedError,
  timeout,
  TimeoutError,
  wrap,
} from './index.js';
import type { Policy } from './index.js';
import { ManualClock } from './testing.js';

async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

describe('wrap', () => {
  it('runs policies outermost first', async () => {
    const order: string[] = [];
    const tracer = (name: string): Policy => ({
      async execute(fn, signal) {
        order.push(`${name}>`);
        try {
          return await fn({ signal: signal ?? new AbortController().signal, attempt: 1 });
        } finally {
          order.push(`<${name}`);
        }
      },
    });
    const policy = wrap(tracer('a'), retry(), tracer('b'));
    await expect(policy.execute(() => order.push('fn'))).resolves.toBe(3);
    expect(order).toEqual(['a>', 'b>', 'fn', '<b', '<a']);
  });

  it('every policy satisfies the Policy port other packages declare for themselves', () => {
    // The port as DESIGN.md states it, declared independently (as smtp-forward's ports.ts does).
    interface PortPolicy {
      execute<T>(
        fn: (context: { signal: AbortSignal }) => Promise<T>,
        signal?: AbortSignal,
      ): Promise<T>;
    }
    const policies: PortPolicy[] = [
      circuitBreaker(),
      timeout(10),
      retry(),
      bulkhead(1),
      wrap(retry(), circuitBreaker(), timeout(10)),
    ];
    expect(policies).toHaveLength(5);
  });

  it('with no policies just runs fn', async () => {
    await expect(wrap().execute(() => 1)).resolves.toBe(1);
    await expect(
      wrap().execute(() => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
  });

  it('a breaker inside a retry counts attempts, not whole retry loops', async () => {
    const breaker = circuitBreaker({ strategy: { kind: 'consecutive', threshold: 3 } });
    const policy = wrap(retry({ maxAttempts: 3, initialDelayMs: 0 }), breaker);
    const error = await policy
      .execute(() => Promise.reject(new Error('down')))
      .catch((e: unknown) => e);
    expect(RetryExhaustedError.isInstance(error)).toBe(true);
    expect(breaker.stats().failures).toBe(3);
    expect(breaker.state).toBe('open');
    // Now open: retry does not hammer an open circuit, it stops at the first rejection.
    let calls = 0;
    await expect(
      policy.execute(() => {
        calls++;
        return 1;
      }),
    ).rejects.toBeInstanceOf(BrokenCircuitError);
    expect(calls).toBe(0);
  });

  it('retry around a timeout retries timed-out attempts, each with a fresh signal', async () => {
    const clock = new ManualClock();
    const signals: AbortSignal[] = [];
    const policy = wrap(
      retry({ maxAttempts: 2, initialDelayMs: 0, clock }),
      timeout({ timeoutMs: 10, clock }),
    );
    const call = policy.execute(({ signal, attempt }) => {
      signals.push(signal);
      return attempt === 1 ? new Promise(() => {}) : Promise.resolve('second');
    });
    await flush();
    clock.advance(10);
    await expect(call).resolves.toBe('second');
    expect(signals.map((signal) => signal.aborted)).toEqual([true, false]);
    expect(TimeoutError.isInstance(signals[0]!.reason)).toBe(true);
  });

  it('propagates the caller’s abort through wrap(retry, breaker, timeout) to fn, with the caller reason', async () => {
    const breaker = circuitBreaker({ strategy: { kind: 'consecutive', threshold: 1 } });
    const policy = wrap(retry({ maxAttempts: 5, initialDelayMs: 0 }), breaker, timeout(60_000));
    const controller = new AbortController();
    const reason = new Error('shutdown');
    let seen: AbortSignal | undefined;
    let attempts = 0;
    const call = policy.execute(({ signal }) => {
      attempts++;
      seen = signal;
      return new Promise((_, reject) =>
        signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true }),
      );
    }, controller.signal);
    await flush();
    controller.abort(reason);
    await expect(call).rejects.toBe(reason);
    expect(seen?.aborted).toBe(true);
    expect(seen?.reason).toBe(reason);
    expect(attempts).toBe(1);
    // The caller's abort is not the dependency's failure.
    expect(breaker.state).toBe('closed');
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('an outer timeout aborts an inner one and rejects with the outer TimeoutError', async () => {
    const clock = new ManualClock();
    const policy = wrap(timeout({ timeoutMs: 10, clock }), timeout({ timeoutMs: 1_000, clock }));
    let inner: AbortSignal | undefined;
    const call = policy.execute(({ signal }) => {
      inner = signal;
      return new Promise(() => {});
    });
    clock.advance(10);
    const error = (await call.catch((e: unknown) => e)) as TimeoutError;
    expect(error.timeoutMs).toBe(10);
    expect(inner?.aborted).toBe(true);
    expect(clock.pendingTimers).toBe(0);
  });

  it('a fallback outside catches what the inner policies throw, and its type joins the result', async () => {
    const breaker = circuitBreaker({ strategy: { kind: 'consecutive', threshold: 1 } });
    const policy = wrap(fallback('fallback' as const), breaker);
    const first = await policy.execute(() => Promise.reject(new Error('x')));
    expect(first).toBe('fallback');
    const second = await policy.execute(() => 1);
    expect(second).toBe('fallback');
    expectTypeOf(second).toEqualTypeOf<number | 'fallback'>();
    const plain = await wrap(retry(), timeout(10)).execute(() => 1);
    expectTypeOf(plain).toEqualTypeOf<number>();
  });

  it('nests: a wrap inside a wrap keeps the order', async () => {
    const limiter = bulkhead(1);
    const inner = wrap(limiter, timeout(1_000));
    const outer = wrap(retry({ maxAttempts: 2, initialDelayMs: 0 }), inner);
    let attempts = 0;
    await expect(
      outer.execute(({ attempt }) => {
        attempts++;
        expect(limiter.active).toBe(1);
        return attempt === 1 ? Promise.reject(new Error('once')) : Promise.resolve('ok');
      }),
    ).resolves.toBe('ok');
    expect(attempts).toBe(2);
    const doubly = wrap(wrap(inner), retry());
    await expect(doubly.execute(() => 'deep')).resolves.toBe('deep');
  });

  it('accepts a hand-written Policy and aborts the inner chain when that policy aborts its signal', async () => {
    const controller = new AbortController();
    const foreign: Policy = {
      execute<T>(fn: Parameters<Policy['execute']>[0]): Promise<T> {
        return fn({ signal: controller.signal, attempt: 1 }) as Promise<T>;
      },
    };
    const policy = wrap(foreign, timeout(60_000));
    let inner: AbortSignal | undefined;
    const call = policy.execute(({ signal }) => {
      inner = signal;
      return new Promise((_, reject) =>
        signal.addEventListener('abort', () => reject(new Error('inner aborted'))),
      );
    });
    controller.abort(new Error('foreign abort'));
    await expect(call).rejects.toThrow('foreign abort');
    expect(inner?.aborted).toBe(true);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    const syncThrow = wrap(foreign).execute(() => {
      throw new Error('sync in foreign');
    });
    await expect(syncThrow).rejects.toThrow('sync in foreign');
  });
});
