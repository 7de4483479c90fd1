import { describe, expect, it } from 'vitest';
import {
  BrokenCircuitError,
  circuitBreaker,
  InvalidOptionError,
  timeout,
  TimeoutError,
  wrap,
} from './index.js';
import type { CircuitState, StateChange } from './index.js';
import { ManualClock } from './testing.js';

const ok = (): Promise<string> => Promise.resolve('ok');
const boom = (): Promise<never> => Promise.reject(new Error('boom'));

function deferred<T = void>(): {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
} {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

async function fail(times: number, run: () => Promise<unknown>): Promise<void> {
  for (let i = 0; i < times; i++) await expect(run()).rejects.toThrow();
}

describe('circuitBreaker with defaults', () => {
  it('works with no options: opens after 5 consecutive failures and probes after 30s', async () => {
    const clock = new ManualClock(1_000);
    const breaker = circuitBreaker({ clock });
    expect(breaker.state).toBe('closed');
    await expect(breaker.execute(ok)).resolves.toBe('ok');
    await fail(4, () => breaker.execute(boom));
    expect(breaker.state).toBe('closed');
    await fail(1, () => breaker.execute(boom));
    expect(breaker.state).toBe('open');
    const rejected = await breaker.execute(ok).catch((error: unknown) => error);
    expect(BrokenCircuitError.isInstance(rejected)).toBe(true);
    expect((rejected as BrokenCircuitError).retryAfterMs).toBe(30_000);
    clock.advance(29_999);
    expect(breaker.state).toBe('open');
    clock.advance(1);
    expect(breaker.state).toBe('half-open');
  });

  it('a default breaker with the system clock closes again on success', async () => {
    const breaker = circuitBreaker();
    await expect(breaker.execute(() => 42)).resolves.toBe(42);
    expect(breaker.stats().successes).toBe(1);
  });
});

describe('state machine', () => {
  it('closed → open → half-open → closed on a successful probe', async () => {
    const clock = new ManualClock();
    const changes: StateChange[] = [];
    const breaker = circuitBreaker({
      clock,
      strategy: { kind: 'consecutive', threshold: 2 },
      halfOpenAfterMs: 100,
    });
    breaker.onStateChange((change) => changes.push(change));
    await fail(2, () => breaker.execute(boom));
    clock.advance(100);
    await expect(breaker.execute(ok)).resolves.toBe('ok');
    expect(breaker.state).toBe('closed');
    expect(changes).toEqual([
      { from: 'closed', to: 'open' },
      { from: 'open', to: 'half-open' },
      { from: 'half-open', to: 'closed' },
    ]);
  });

  it('half-open → open again on a failed probe, with a fresh wait', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      clock,
      strategy: { kind: 'consecutive', threshold: 1 },
      halfOpenAfterMs: 100,
    });
    await fail(1, () => breaker.execute(boom));
    clock.advance(150);
    await fail(1, () => breaker.execute(boom));
    expect(breaker.state).toBe('open');
    const error = (await breaker.execute(ok).catch((e: unknown) => e)) as BrokenCircuitError;
    expect(error.retryAfterMs).toBe(100);
  });

  it('reaches half-open with no timer: a breaker used once per request in a short-lived process', async () => {
    const clock = new ManualClock();
    const first = circuitBreaker({
      clock,
      strategy: { kind: 'consecutive', threshold: 1 },
      halfOpenAfterMs: 50,
    });
    await fail(1, () => first.execute(boom));
    const saved = JSON.parse(JSON.stringify(first)) as ReturnType<typeof first.toJSON>;
    expect(saved).toEqual({ state: 'open', openedAt: 0, reopenings: 0 });
    clock.advance(60);
    // A new breaker in a new request, restored from saved state, lets the probe through at once.
    const second = circuitBreaker({ clock, initialState: saved, halfOpenAfterMs: 50 });
    expect(second.state).toBe('half-open');
    await expect(second.execute(ok)).resolves.toBe('ok');
    expect(second.toJSON()).toEqual({ state: 'closed', openedAt: 0, reopenings: 0 });
  });

  it('grows the wait after each failed probe up to maxHalfOpenAfterMs, and resets it on close', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      clock,
      strategy: { kind: 'consecutive', threshold: 1 },
      halfOpenAfterMs: 100,
      maxHalfOpenAfterMs: 300,
      halfOpenBackoffFactor: 2,
    });
    const retryAfter = async (): Promise<number> =>
      ((await breaker.execute(() => 'x').catch((e: unknown) => e)) as BrokenCircuitError)
        .retryAfterMs;
    await fail(1, () => breaker.execute(boom));
    expect(await retryAfter()).toBe(100);
    clock.advance(100);
    await fail(1, () => breaker.execute(boom));
    expect(await retryAfter()).toBe(200);
    expect(breaker.toJSON()).toEqual({ state: 'open', openedAt: 100, reopenings: 1 });
    clock.advance(200);
    await fail(1, () => breaker.execute(boom));
    expect(await retryAfter()).toBe(300);
    // A restored breaker keeps the grown wait.
    const restored = circuitBreaker({
      clock,
      initialState: breaker.toJSON(),
      halfOpenAfterMs: 100,
      maxHalfOpenAfterMs: 300,
    });
    clock.advance(299);
    expect(restored.state).toBe('open');
    clock.advance(1);
    await breaker.execute(() => 'probe');
    expect(breaker.state).toBe('closed');
    await fail(1, () => breaker.execute(boom));
    expect(await retryAfter()).toBe(100);
  });

  it('needs successesToClose successful probes to close', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      clock,
      strategy: { kind: 'consecutive', threshold: 1 },
      halfOpenAfterMs: 10,
      successesToClose: 3,
    });
    await fail(1, () => breaker.execute(boom));
    clock.advance(10);
    await breaker.execute(ok);
    await breaker.execute(ok);
    expect(breaker.state).toBe('half-open');
    await breaker.execute(ok);
    expect(breaker.state).toBe('closed');
  });

  it('rejects, never queues, calls beyond the half-open probe limit: 100 concurrent calls run exactly the permitted probes', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      clock,
      strategy: { kind: 'consecutive', threshold: 1 },
      halfOpenAfterMs: 10,
      halfOpenMaxProbes: 3,
    });
    await fail(1, () => breaker.execute(boom));
    clock.advance(10);
    const gate = deferred();
    let ran = 0;
    const calls = Array.from({ length: 100 }, () =>
      breaker.execute(async () => {
        ran++;
        await gate.promise;
        return 'probe';
      }),
    );
    expect(breaker.stats().probesInFlight).toBe(3);
    gate.resolve();
    const results = await Promise.allSettled(calls);
    expect(ran).toBe(3);
    expect(results.filter((result) => result.status === 'fulfilled').length).toBe(3);
    const rejected = results.filter(
      (result): result is PromiseRejectedResult => result.status === 'rejected',
    );
    expect(rejected.length).toBe(97);
    expect(rejected.every((result) => BrokenCircuitError.isInstance(result.reason))).toBe(true);
    expect(breaker.state).toBe('closed');
  });

  it('ignores the results of calls that started before the last state change', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      clock,
      strategy: { kind: 'consecutive', threshold: 1 },
      halfOpenAfterMs: 10,
    });
    const slow = deferred<string>();
    const stale = breaker.execute(() => slow.promise);
    await fail(1, () => breaker.execute(boom));
    expect(breaker.state).toBe('open');
    clock.advance(10);
    // A success that began while closed must not close a half-open circuit.
    slow.resolve('late');
    await expect(stale).resolves.toBe('late');
    expect(breaker.state).toBe('half-open');
    expect(breaker.stats().ignored).toBe(1);
  });

  it('a late failure from before the transition does not reopen a circuit that closed', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      clock,
      strategy: { kind: 'consecutive', threshold: 1 },
      halfOpenAfterMs: 10,
    });
    const slow = deferred<string>();
    await fail(1, () => breaker.execute(boom));
    clock.advance(10);
    const probe = breaker.execute(() => slow.promise);
    await breaker.reset();
    slow.reject(new Error('late'));
    await expect(probe).rejects.toThrow('late');
    expect(breaker.state).toBe('closed');
  });

  it('does not count errors isFailure rejects (a 4xx is not a failure)', async () => {
    const breaker = circuitBreaker({
      strategy: { kind: 'consecutive', threshold: 1 },
      isFailure: (error) => !(error instanceof RangeError),
    });
    await expect(breaker.execute(() => Promise.reject(new RangeError('404')))).rejects.toThrow(
      '404',
    );
    expect(breaker.state).toBe('closed');
    expect(breaker.stats().successes).toBe(1);
    await fail(1, () => breaker.execute(boom));
    expect(breaker.state).toBe('open');
  });

  it('counts resolved values isFailureResult rejects as failures, and still returns them', async () => {
    const breaker = circuitBreaker({
      strategy: { kind: 'consecutive', threshold: 2 },
      isFailureResult: (value) => (value as { status: number }).status >= 500,
    });
    const results: unknown[] = [];
    breaker.onFailure((event) => results.push(event));
    await expect(breaker.execute(() => ({ status: 503 }))).resolves.toEqual({ status: 503 });
    await expect(breaker.execute(() => ({ status: 200 }))).resolves.toEqual({ status: 200 });
    await breaker.execute(() => ({ status: 502 }));
    expect(breaker.state).toBe('closed');
    await breaker.execute(() => ({ status: 500 }));
    expect(breaker.state).toBe('open');
    expect(results[0]).toEqual({ error: undefined, result: { status: 503 } });
  });

  it('counts an isFailure that throws as a failure', async () => {
    const breaker = circuitBreaker({
      strategy: { kind: 'consecutive', threshold: 1 },
      isFailure: () => {
        throw new Error('predicate bug');
      },
    });
    await fail(1, () => breaker.execute(boom));
    expect(breaker.state).toBe('open');
  });

  it('counts a synchronous throw as a failure and rejects (never throws synchronously)', async () => {
    const breaker = circuitBreaker({ strategy: { kind: 'consecutive', threshold: 1 } });
    const result = breaker.execute(() => {
      throw new Error('sync');
    });
    await expect(result).rejects.toThrow('sync');
    expect(breaker.state).toBe('open');
  });

  it('does not count a call the caller aborted', async () => {
    const breaker = circuitBreaker({ strategy: { kind: 'consecutive', threshold: 1 } });
    const controller = new AbortController();
    const call = breaker.execute(
      ({ signal }) =>
        new Promise((_, reject) =>
          signal.addEventListener('abort', () => reject(signal.reason as Error)),
        ),
      controller.signal,
    );
    controller.abort(new Error('user left'));
    await expect(call).rejects.toThrow('user left');
    expect(breaker.state).toBe('closed');
    expect(breaker.stats().ignored).toBe(1);
  });

  it('a half-open probe whose caller aborted frees the probe slot at once, counting nothing', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      clock,
      strategy: { kind: 'consecutive', threshold: 1 },
      halfOpenAfterMs: 100,
    });
    await expect(breaker.execute(boom)).rejects.toThrow('boom');
    clock.advance(100);
    const controller = new AbortController();
    const probe = breaker.execute(
      ({ signal }) =>
        new Promise((_, reject) =>
          signal.addEventListener('abort', () => reject(signal.reason as Error)),
        ),
      controller.signal,
    );
    await expect(breaker.execute(ok)).rejects.toBeInstanceOf(BrokenCircuitError);
    const reason = new Error('client went away');
    controller.abort(reason);
    await expect(probe).rejects.toBe(reason);
    expect(breaker.stats()).toMatchObject({ state: 'half-open', ignored: 1, probesInFlight: 0 });
    await expect(breaker.execute(ok)).resolves.toBe('ok');
    expect(breaker.state).toBe('closed');
  });

  it('rejects at once with the reason when the caller signal is already aborted', async () => {
    const breaker = circuitBreaker();
    let ran = false;
    const reason = new Error('already');
    await expect(
      breaker.execute(() => {
        ran = true;
      }, AbortSignal.abort(reason)),
    ).rejects.toBe(reason);
    expect(ran).toBe(false);
  });

  it('counts a TimeoutError as a failure', async () => {
    const breaker = circuitBreaker({ strategy: { kind: 'consecutive', threshold: 1 } });
    await expect(breaker.execute(() => Promise.reject(new TimeoutError(5)))).rejects.toThrow(
      TimeoutError,
    );
    expect(breaker.state).toBe('open');
  });
});

describe('isolate', () => {
  it('holds the circuit open until every handle is released, then closes', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({ clock, halfOpenAfterMs: 10 });
    const first = breaker.isolate();
    const second = breaker.isolate();
    expect(breaker.state).toBe('isolated');
    clock.advance(1_000_000);
    const error = (await breaker.execute(ok).catch((e: unknown) => e)) as BrokenCircuitError;
    expect(error.isolated).toBe(true);
    expect(error.retryAfterMs).toBe(Infinity);
    expect(breaker.toJSON()).toEqual({ state: 'open', openedAt: 1_000_000, reopenings: 0 });
    first.dispose();
    first.dispose();
    expect(breaker.state).toBe('isolated');
    await breaker.reset();
    expect(breaker.state).toBe('isolated');
    second.dispose();
    expect(breaker.state).toBe('closed');
    await expect(breaker.execute(ok)).resolves.toBe('ok');
  });
});

describe('count-window strategy', () => {
  it('opens when the failure rate over the last N calls reaches the threshold, after the minimum calls', async () => {
    const breaker = circuitBreaker({
      strategy: { kind: 'count-window', size: 4, minimumCalls: 4, failureRateThreshold: 0.5 },
    });
    await breaker.execute(ok);
    await fail(1, () => breaker.execute(boom));
    await breaker.execute(ok);
    expect(breaker.state).toBe('closed');
    await fail(1, () => breaker.execute(boom));
    // 2 of 4 failed: 50%.
    expect(breaker.state).toBe('open');
  });

  it('slides: old failures leave the window', async () => {
    const breaker = circuitBreaker({
      strategy: { kind: 'count-window', size: 3, minimumCalls: 3, failureRateThreshold: 0.66 },
    });
    await fail(1, () => breaker.execute(boom));
    await breaker.execute(ok);
    await breaker.execute(ok);
    await fail(1, () => breaker.execute(boom));
    // Window is [ok, ok, fail]: the first failure slid out.
    expect(breaker.state).toBe('closed');
    await fail(1, () => breaker.execute(boom));
    expect(breaker.state).toBe('open');
  });

  it('forgets the window when the circuit closes, and counts slow calls in a time window', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      clock,
      halfOpenAfterMs: 10,
      slowCallMs: 5,
      strategy: { kind: 'count-window', size: 2, minimumCalls: 2, failureRateThreshold: 1 },
    });
    await fail(2, () => breaker.execute(boom));
    clock.advance(10);
    await breaker.execute(ok);
    expect(breaker.state).toBe('closed');
    await fail(1, () => breaker.execute(boom));
    expect(breaker.state).toBe('closed');

    const timed = circuitBreaker({
      clock,
      slowCallMs: 5,
      strategy: {
        kind: 'time-window',
        durationMs: 1_000,
        minimumCalls: 2,
        slowCallRateThreshold: 1,
      },
    });
    const slow = (): Promise<void> =>
      timed.execute(() => {
        clock.advance(5);
        return Promise.resolve();
      });
    await slow();
    await slow();
    expect(timed.state).toBe('open');
  });

  it('opens on the slow-call rate', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      clock,
      slowCallMs: 100,
      strategy: { kind: 'count-window', size: 2, minimumCalls: 2, slowCallRateThreshold: 1 },
    });
    const slowCall = (): Promise<string> =>
      breaker.execute(() => {
        clock.advance(150);
        return Promise.resolve('slow');
      });
    await slowCall();
    expect(breaker.state).toBe('closed');
    await slowCall();
    expect(breaker.state).toBe('open');
    expect(breaker.stats().slowCalls).toBe(2);
  });
});

describe('time-window strategy', () => {
  it('counts only calls within the window', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      clock,
      strategy: {
        kind: 'time-window',
        durationMs: 1_000,
        buckets: 10,
        minimumCalls: 3,
        failureRateThreshold: 0.5,
      },
    });
    await fail(1, () => breaker.execute(boom));
    await fail(1, () => breaker.execute(boom));
    clock.advance(1_500);
    // The two failures expired: one more failure is 1 of 1 calls, below minimumCalls.
    await fail(1, () => breaker.execute(boom));
    expect(breaker.state).toBe('closed');
    await breaker.execute(ok);
    expect(breaker.state).toBe('closed');
    clock.advance(100);
    await fail(1, () => breaker.execute(boom));
    // 2 failures of 3 calls within the window.
    expect(breaker.state).toBe('open');
  });

  it('slides bucket by bucket', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      clock,
      strategy: {
        kind: 'time-window',
        durationMs: 1_000,
        buckets: 4,
        minimumCalls: 2,
        failureRateThreshold: 1,
      },
    });
    await fail(1, () => breaker.execute(boom));
    clock.advance(500);
    await breaker.execute(ok);
    clock.advance(600);
    // The first failure's bucket expired, the success's has not: 1 failure of 2.
    await fail(1, () => breaker.execute(boom));
    expect(breaker.state).toBe('closed');
    clock.advance(500);
    await fail(1, () => breaker.execute(boom));
    expect(breaker.state).toBe('open');
  });

  it('starts counting afresh after the circuit closed again', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      clock,
      halfOpenAfterMs: 10,
      strategy: {
        kind: 'time-window',
        durationMs: 1_000,
        buckets: 2,
        minimumCalls: 2,
        failureRateThreshold: 1,
      },
    });
    await fail(2, () => breaker.execute(boom));
    expect(breaker.state).toBe('open');
    clock.advance(10);
    await breaker.execute(ok);
    expect(breaker.state).toBe('closed');
    // The two failures from before the close are forgotten: one more is 1 of 1, below minimumCalls.
    await fail(1, () => breaker.execute(boom));
    expect(breaker.state).toBe('closed');
  });

  it('counts into the current slice when the clock steps back', async () => {
    const clock = new ManualClock(10_000);
    const breaker = circuitBreaker({
      clock,
      strategy: {
        kind: 'time-window',
        durationMs: 1_000,
        buckets: 4,
        minimumCalls: 2,
        failureRateThreshold: 1,
      },
    });
    await fail(1, () => breaker.execute(boom));
    clock.set(5_000);
    await fail(1, () => breaker.execute(boom));
    expect(breaker.state).toBe('open');
  });

  it('treats a slow success as a failure signal in the consecutive strategy', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      clock,
      slowCallMs: 10,
      strategy: { kind: 'consecutive', threshold: 1 },
    });
    await breaker.execute(() => {
      clock.advance(10);
      return Promise.resolve();
    });
    expect(breaker.state).toBe('open');
  });
});

describe('events and counters', () => {
  it('fires success, failure and rejected only while someone listens', async () => {
    const breaker = circuitBreaker({ strategy: { kind: 'consecutive', threshold: 1 } });
    const seen: string[] = [];
    const subscriptions = [
      breaker.onSuccess(() => seen.push('success')),
      breaker.onFailure(({ error }) => seen.push(`failure:${(error as Error).message}`)),
      breaker.onRejected((error) => seen.push(`rejected:${error.code}`)),
    ];
    await breaker.execute(ok);
    await fail(1, () => breaker.execute(boom));
    await fail(1, () => breaker.execute(ok));
    for (const subscription of subscriptions) subscription.dispose();
    await fail(1, () => breaker.execute(ok));
    expect(seen).toEqual(['success', 'failure:boom', 'rejected:BROKEN_CIRCUIT']);
    expect(breaker.stats()).toEqual({
      state: 'open',
      successes: 1,
      failures: 1,
      slowCalls: 0,
      rejections: 2,
      ignored: 0,
      probesInFlight: 0,
    });
  });

  it('a throwing listener does not corrupt the breaker', async () => {
    const breaker = circuitBreaker({ strategy: { kind: 'consecutive', threshold: 1 } });
    const errors: unknown[] = [];
    const original = globalThis.queueMicrotask;
    globalThis.queueMicrotask = (callback) =>
      original(() => {
        try {
          callback();
        } catch (error) {
          errors.push(error);
        }
      });
    try {
      breaker.onStateChange(() => {
        throw new Error('listener bug');
      });
      await fail(1, () => breaker.execute(boom));
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      globalThis.queueMicrotask = original;
    }
    expect(breaker.state).toBe('open');
    expect(errors).toHaveLength(1);
  });
});

describe('invalid options', () => {
  const cases: Array<[string, () => unknown]> = [
    ['halfOpenAfterMs', () => circuitBreaker({ halfOpenAfterMs: -1 })],
    ['halfOpenAfterMs', () => circuitBreaker({ halfOpenAfterMs: Number.NaN })],
    ['halfOpenMaxProbes', () => circuitBreaker({ halfOpenMaxProbes: 0 })],
    ['successesToClose', () => circuitBreaker({ successesToClose: 1.5 })],
    ['slowCallMs', () => circuitBreaker({ slowCallMs: -5 })],
    [
      'strategy.threshold',
      () => circuitBreaker({ strategy: { kind: 'consecutive', threshold: 0 } }),
    ],
    [
      'strategy.size',
      () => circuitBreaker({ strategy: { kind: 'count-window', size: 5, minimumCalls: 10 } }),
    ],
    [
      'strategy.failureRateThreshold',
      () =>
        circuitBreaker({ strategy: { kind: 'count-window', size: 5, failureRateThreshold: 2 } }),
    ],
    [
      'strategy.failureRateThreshold',
      () =>
        circuitBreaker({ strategy: { kind: 'count-window', size: 5, failureRateThreshold: 0 } }),
    ],
    [
      'strategy.slowCallRateThreshold',
      () =>
        circuitBreaker({ strategy: { kind: 'count-window', size: 5, slowCallRateThreshold: 0 } }),
    ],
    [
      'strategy.durationMs',
      () => circuitBreaker({ strategy: { kind: 'time-window', durationMs: 0 } }),
    ],
    [
      'strategy.buckets',
      () => circuitBreaker({ strategy: { kind: 'time-window', durationMs: 10, buckets: 0 } }),
    ],
    ['strategy.kind', () => circuitBreaker({ strategy: { kind: 'nope' } as never })],
    ['strategy', () => circuitBreaker({ strategy: 5 as never })],
    ['isFailure', () => circuitBreaker({ isFailure: 'yes' as never })],
    ['isFailureResult', () => circuitBreaker({ isFailureResult: 'yes' as never })],
    ['initialState.state', () => circuitBreaker({ initialState: { state: 'half' } as never })],
    [
      'initialState.openedAt',
      () => circuitBreaker({ initialState: { state: 'open', openedAt: Number.NaN } }),
    ],
    [
      'initialState.reopenings',
      () => circuitBreaker({ initialState: { state: 'open', openedAt: 0, reopenings: -1 } }),
    ],
    ['maxHalfOpenAfterMs', () => circuitBreaker({ halfOpenAfterMs: 100, maxHalfOpenAfterMs: 50 })],
    ['halfOpenBackoffFactor', () => circuitBreaker({ halfOpenBackoffFactor: 0.5 })],
    ['shared.key', () => circuitBreaker({ shared: { store: {} as never, key: '' } })],
    ['shared.store', () => circuitBreaker({ shared: { store: null as never, key: 'k' } })],
  ];
  for (const [option, build] of cases) {
    it(`names ${option}`, () => {
      let thrown: unknown;
      try {
        build();
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(TypeError);
      expect(InvalidOptionError.isInstance(thrown)).toBe(true);
      expect((thrown as InvalidOptionError).option).toBe(option);
      expect((thrown as Error).message).toContain(`"${option}"`);
    });
  }

  it('does not mutate the options it was given', () => {
    const options = Object.freeze({
      halfOpenAfterMs: 5,
      strategy: Object.freeze({ kind: 'consecutive' as const, threshold: 2 }),
    });
    expect(() => circuitBreaker(options)).not.toThrow();
  });
});

describe('state reporting', () => {
  it('reports each state', async () => {
    const clock = new ManualClock();
    const breaker = circuitBreaker({
      clock,
      strategy: { kind: 'consecutive', threshold: 1 },
      halfOpenAfterMs: 5,
    });
    const states: CircuitState[] = [breaker.state];
    await fail(1, () => breaker.execute(boom));
    states.push(breaker.state);
    expect(breaker.toJSON()).toEqual({ state: 'open', openedAt: 0, reopenings: 0 });
    clock.advance(5);
    states.push(breaker.state);
    expect(breaker.toJSON()).toEqual({ state: 'open', openedAt: 0, reopenings: 0 });
    expect(states).toEqual(['closed', 'open', 'half-open']);
  });
});

describe('closed fast path', () => {
  it('opens on the success that brings a count window to its minimum calls', async () => {
    const clock = new ManualClock(5_000);
    const breaker = circuitBreaker({
      clock,
      strategy: { kind: 'count-window', size: 4, minimumCalls: 4, failureRateThreshold: 0.5 },
    });
    const changes: StateChange[] = [];
    breaker.onStateChange((change) => changes.push(change));
    await fail(2, () => breaker.execute(boom));
    await breaker.execute(ok);
    expect(breaker.state).toBe('closed');
    await breaker.execute(ok);
    expect(breaker.state).toBe('open');
    expect(changes).toEqual([{ from: 'closed', to: 'open' }]);
    expect(breaker.toJSON()).toEqual({ state: 'open', openedAt: 5_000, reopenings: 0 });
  });

  it('counts the same with and without a caller signal, alone and as the outer link of wrap', async () => {
    const outcomes = [true, false, true, true, false, false, false, true];
    const run = async (
      execute: (fn: () => Promise<string>) => Promise<unknown>,
    ): Promise<unknown[]> => {
      const seen: unknown[] = [];
      for (const succeed of outcomes) {
        seen.push(await execute(succeed ? ok : boom).catch((error: unknown) => String(error)));
      }
      return seen;
    };
    // A manual clock per breaker: the rejection message names the time left, which a real clock
    // could shorten by a millisecond between the three runs.
    const make = () =>
      circuitBreaker({
        strategy: { kind: 'consecutive', threshold: 3 },
        halfOpenAfterMs: 60_000,
        clock: new ManualClock(),
      });
    const plain = make();
    const signalled = make();
    const wrapped = make();
    const controller = new AbortController();
    const results = [
      await run((fn) => plain.execute(fn)),
      await run((fn) => signalled.execute(fn, controller.signal)),
      await run((fn) =>
        wrap(wrapped, timeout({ timeoutMs: 60_000, clock: new ManualClock() })).execute(fn),
      ),
    ];
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toEqual(results[0]);
    expect(results[0]).toContain(
      'BrokenCircuitError: Circuit is open: calls are rejected for another 60000ms',
    );
    expect(signalled.stats()).toEqual(plain.stats());
    expect(wrapped.stats()).toEqual(plain.stats());
    expect(plain.stats()).toMatchObject({
      state: 'open',
      successes: 3,
      failures: 4,
      rejections: 1,
    });
  });

  it('hands the work’s own promise back, so the caller resumes after the breaker counted', async () => {
    const breaker = circuitBreaker();
    const work = Promise.resolve('same');
    const returned = breaker.execute(() => work);
    expect(returned).toBe(work);
    await returned;
    expect(breaker.stats().successes).toBe(1);
  });
});
