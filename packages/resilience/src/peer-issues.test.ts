/**
 * Regression tests for problems reported against cockatiel and opossum: each one must be
 * impossible here. The issue each test answers is named in its title.
 */
import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { BrokenCircuitError, circuitBreaker, retry, timeout, wrap } from './index.js';
import { ManualClock } from './testing.js';

const boom = (): Promise<never> => Promise.reject(new Error('boom'));

describe('problems reported against the peers', () => {
  it('opossum#385: simultaneous failures still let the circuit reach half-open', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      clock,
      strategy: { kind: 'consecutive', threshold: 5 },
      halfOpenAfterMs: 100,
    });
    await Promise.allSettled(Array.from({ length: 6 }, () => breaker.execute(boom)));
    expect(breaker.state).toBe('open');
    clock.advance(100);
    expect(breaker.state).toBe('half-open');
    await expect(breaker.execute(() => 'probe')).resolves.toBe('probe');
    expect(breaker.state).toBe('closed');
  });

  it('opossum#119/#819: half-open lets exactly the permitted probe through, not every request', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      clock,
      strategy: { kind: 'consecutive', threshold: 1 },
      halfOpenAfterMs: 1,
    });
    await breaker.execute(boom).catch(() => undefined);
    clock.advance(1);
    let running = 0;
    const calls = Array.from({ length: 50 }, () =>
      breaker.execute(async () => {
        running++;
        await Promise.resolve();
        return running;
      }),
    );
    const results = await Promise.allSettled(calls);
    expect(running).toBe(1);
    expect(
      results.filter(
        (result) => result.status === 'rejected' && BrokenCircuitError.isInstance(result.reason),
      ),
    ).toHaveLength(49);
  });

  it('opossum#378/#809: breakers hold no timers or intervals, however many are created', async () => {
    const before = process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length;
    const breakers = Array.from({ length: 1_000 }, () =>
      circuitBreaker({ strategy: { kind: 'time-window', durationMs: 10_000, minimumCalls: 1 } }),
    );
    await Promise.all(breakers.map((breaker) => breaker.execute(() => 1)));
    const after = process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length;
    expect(after).toBe(before);
  });

  it('cockatiel#112/#101: a half-open probe gets the caller’s signal, and the abort reason survives', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      clock,
      strategy: { kind: 'consecutive', threshold: 1 },
      halfOpenAfterMs: 1,
    });
    await breaker.execute(boom).catch(() => undefined);
    clock.advance(1);
    const controller = new AbortController();
    const reason = new Error('client went away');
    let probeSignal: AbortSignal | undefined;
    const probe = wrap(breaker, timeout({ timeoutMs: 60_000, clock })).execute(({ signal }) => {
      probeSignal = signal;
      return new Promise((_, reject) =>
        signal.addEventListener('abort', () => reject(signal.reason as Error)),
      );
    }, controller.signal);
    controller.abort(reason);
    await expect(probe).rejects.toBe(reason);
    expect(probeSignal?.reason).toBe(reason);
    // The aborted probe neither closed nor reopened the circuit, and freed its slot.
    expect(breaker.state).toBe('half-open');
    await expect(breaker.execute(() => 'next probe')).resolves.toBe('next probe');
  });

  it('cockatiel#72: the signal is not aborted after success, so the body can still be read', async () => {
    const clock = new ManualClock();
    const policy = wrap(retry(), circuitBreaker(), timeout({ timeoutMs: 10, clock }));
    const response = await policy.execute(({ signal }) => ({ signal, body: 'streamed later' }));
    clock.advance(100);
    expect(response.signal.aborted).toBe(false);
  });

  it('cockatiel#81/#69: wrap(retry, timeout) retrying many times leaves no listener on the caller signal', async () => {
    const controller = new AbortController();
    const policy = wrap(retry({ maxAttempts: 15, initialDelayMs: 0 }), timeout(100));
    let attempts = 0;
    await policy.execute(({ signal }) => {
      attempts++;
      void signal.aborted;
      return attempts < 15 ? Promise.reject(new Error('fail')) : Promise.resolve('done');
    }, controller.signal);
    expect(attempts).toBe(15);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('opossum#719: a breaker created per request reaches half-open from saved state without any timer', async () => {
    const clock = new ManualClock();
    let saved = circuitBreaker({ clock }).toJSON();
    for (let request = 0; request < 5; request++) {
      const breaker = circuitBreaker({
        clock,
        initialState: saved,
        strategy: { kind: 'consecutive', threshold: 1 },
        halfOpenAfterMs: 50,
      });
      await breaker.execute(boom).catch(() => undefined);
      saved = breaker.toJSON();
    }
    expect(saved.state).toBe('open');
    clock.advance(50);
    const breaker = circuitBreaker({ clock, initialState: saved, halfOpenAfterMs: 50 });
    await expect(breaker.execute(() => 'probe')).resolves.toBe('probe');
    expect(breaker.toJSON().state).toBe('closed');
  });
});
