import { describe, expect, it } from 'vitest';
import { BrokenCircuitError, circuitBreaker, MemoryBreakerStore } from './index.js';
import type { BreakerStateStore, SharedBreakerState } from './index.js';
import { breakerStoreContract, ManualClock } from './testing.js';

breakerStoreContract('MemoryBreakerStore', () => new MemoryBreakerStore(), {
  describe,
  it,
  expect,
});

const boom = (): Promise<never> => Promise.reject(new Error('boom'));

function shared(
  store: BreakerStateStore,
  clock: ManualClock,
  key = 'relay',
): ReturnType<typeof circuitBreaker> {
  return circuitBreaker({
    clock,
    strategy: { kind: 'consecutive', threshold: 2 },
    halfOpenAfterMs: 100,
    shared: { store, key, syncIntervalMs: 0, probeLeaseMs: 1_000 },
  });
}

describe('shared breaker state', () => {
  it('a circuit opened by one breaker rejects calls in another', async () => {
    const store = new MemoryBreakerStore();
    const clock = new ManualClock(10_000);
    const a = shared(store, clock);
    const b = shared(store, clock);
    await expect(a.execute(boom)).rejects.toThrow('boom');
    await expect(a.execute(boom)).rejects.toThrow('boom');
    expect(a.state).toBe('open');
    const error = await b.execute(() => 'x').catch((e: unknown) => e);
    expect(BrokenCircuitError.isInstance(error)).toBe(true);
    expect(b.state).toBe('open');
  });

  it('two breakers never probe at once: exactly one claim wins', async () => {
    const store = new MemoryBreakerStore();
    const clock = new ManualClock(0);
    const breakers = Array.from({ length: 5 }, () => shared(store, clock));
    await breakers[0]!.execute(boom).catch(() => undefined);
    await breakers[0]!.execute(boom).catch(() => undefined);
    clock.advance(100);
    let probes = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const calls = breakers.flatMap((breaker) =>
      [1, 2, 3].map(() =>
        breaker.execute(async () => {
          probes++;
          await gate;
          return 'probe';
        }),
      ),
    );
    const settled = Promise.allSettled(calls);
    await new Promise((resolve) => setImmediate(resolve));
    release();
    const results = await settled;
    expect(probes).toBe(1);
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
    expect((await store.load('relay')).state).toBe('closed');
    // Everyone sees the close on their next call.
    await expect(breakers[3]!.execute(() => 'after')).resolves.toBe('after');
    expect(breakers[3]!.state).toBe('closed');
  });

  it('a failed probe reopens the shared circuit for everyone', async () => {
    const store = new MemoryBreakerStore();
    const clock = new ManualClock(0);
    const a = shared(store, clock);
    const b = shared(store, clock);
    await a.execute(boom).catch(() => undefined);
    await a.execute(boom).catch(() => undefined);
    clock.advance(100);
    await expect(b.execute(boom)).rejects.toThrow('boom');
    const state = await store.load('relay');
    expect(state.state).toBe('open');
    expect(state.openedAt).toBe(100);
    await expect(a.execute(() => 1)).rejects.toBeInstanceOf(BrokenCircuitError);
  });

  it('reset closes the shared circuit; isolate holds this breaker open locally', async () => {
    const store = new MemoryBreakerStore();
    const clock = new ManualClock(0);
    const a = shared(store, clock);
    await a.execute(boom).catch(() => undefined);
    await a.execute(boom).catch(() => undefined);
    await a.reset();
    expect((await store.load('relay')).state).toBe('closed');
    await expect(a.execute(() => 2)).resolves.toBe(2);
    const handle = a.isolate();
    await expect(a.execute(() => 3)).rejects.toBeInstanceOf(BrokenCircuitError);
    handle.dispose();
    await expect(a.execute(() => 4)).resolves.toBe(4);
  });

  it('after an isolation ends, adopts what the shared circuit did meanwhile', async () => {
    const store = new MemoryBreakerStore();
    const clock = new ManualClock(0);
    const isolatedOne = circuitBreaker({
      clock,
      halfOpenAfterMs: 100,
      shared: { store, key: 'iso', syncIntervalMs: 60_000 },
    });
    await isolatedOne.execute(() => 1);
    const handle = isolatedOne.isolate();
    await store.open('iso', (await store.load('iso')).generation, 0);
    handle.dispose();
    await expect(isolatedOne.execute(() => 2)).rejects.toBeInstanceOf(BrokenCircuitError);
    expect(isolatedOne.state).toBe('open');
  });

  it('falls back to local decisions when the store fails, and reports it', async () => {
    const clock = new ManualClock(0);
    const failing: BreakerStateStore = {
      load: () => Promise.reject(new Error('redis down')),
      open: () => Promise.reject(new Error('redis down')),
      claimProbe: () => Promise.reject(new Error('redis down')),
      probeSucceeded: () => Promise.reject(new Error('redis down')),
      reset: () => Promise.reject(new Error('redis down')),
    };
    const breaker = circuitBreaker({
      clock,
      strategy: { kind: 'consecutive', threshold: 1 },
      halfOpenAfterMs: 10,
      shared: { store: failing, key: 'k', syncIntervalMs: 0 },
    });
    const storeErrors: unknown[] = [];
    breaker.onStoreError((error) => storeErrors.push(error));
    await expect(breaker.execute(() => 'still works')).resolves.toBe('still works');
    await expect(breaker.execute(boom)).rejects.toThrow('boom');
    expect(storeErrors.length).toBeGreaterThan(0);
    // Opening could not be written: the breaker stays usable rather than failing every call.
    await expect(breaker.execute(() => 'ok')).resolves.toBe('ok');
  });

  it('uses the local half-open gate when the store fails during a claim', async () => {
    const clock = new ManualClock(0);
    const memory = new MemoryBreakerStore();
    let claimFails = false;
    const store: BreakerStateStore = {
      load: (key) => memory.load(key),
      open: (key, generation, now) => memory.open(key, generation, now),
      claimProbe: (key, now, after, lease) =>
        claimFails
          ? Promise.reject(new Error('timeout'))
          : memory.claimProbe(key, now, after, lease),
      probeSucceeded: (key, generation, needed) => memory.probeSucceeded(key, generation, needed),
      reset: (key) => memory.reset(key),
    };
    const breaker = circuitBreaker({
      clock,
      strategy: { kind: 'consecutive', threshold: 1 },
      halfOpenAfterMs: 10,
      shared: { store, key: 'k', syncIntervalMs: 0 },
    });
    await breaker.execute(boom).catch(() => undefined);
    expect(breaker.state).toBe('open');
    await expect(breaker.execute(() => 1)).rejects.toBeInstanceOf(BrokenCircuitError);
    clock.advance(10);
    claimFails = true;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const probe = breaker.execute(() => gate.then(() => 'probe'));
    await new Promise((resolve) => setImmediate(resolve));
    await expect(breaker.execute(() => 'second')).rejects.toBeInstanceOf(BrokenCircuitError);
    release();
    await expect(probe).resolves.toBe('probe');
  });

  it('adopts state written by another process between syncs', async () => {
    const store = new MemoryBreakerStore();
    const clock = new ManualClock(0);
    const breaker = circuitBreaker({
      clock,
      halfOpenAfterMs: 100,
      shared: { store, key: 'x', syncIntervalMs: 1_000 },
    });
    await breaker.execute(() => 1);
    const state: SharedBreakerState = await store.open('x', (await store.load('x')).generation, 0);
    expect(state.state).toBe('open');
    // Within the sync interval the local copy still says closed.
    await expect(breaker.execute(() => 2)).resolves.toBe(2);
    clock.advance(50);
    await expect(breaker.execute(() => 2)).resolves.toBe(2);
    clock.advance(1_000);
    // Past the interval it re-reads: open, but halfOpenAfterMs passed, so this call probes.
    await expect(breaker.execute(() => 3)).resolves.toBe(3);
    expect((await store.load('x')).state).toBe('closed');
  });
});

/** A store that forwards to `memory` while `up()` and otherwise rejects, like an unreachable Redis. */
function switchable(memory: MemoryBreakerStore, up: () => boolean): BreakerStateStore {
  const down = (): Promise<never> => Promise.reject(new Error('redis down'));
  return {
    load: (key) => (up() ? memory.load(key) : down()),
    open: (key, generation, now) => (up() ? memory.open(key, generation, now) : down()),
    claimProbe: (key, now, after, lease) =>
      up() ? memory.claimProbe(key, now, after, lease) : down(),
    probeSucceeded: (key, generation, needed) =>
      up() ? memory.probeSucceeded(key, generation, needed) : down(),
    reset: (key) => (up() ? memory.reset(key) : down()),
  };
}

/** The outcome of `promise` once every pending microtask has run, or 'pending'. */
async function outcomeNow(promise: Promise<unknown>): Promise<unknown> {
  const settled = promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  return Promise.race([settled, new Promise((resolve) => setImmediate(() => resolve('pending')))]);
}

const never = (): Promise<never> => new Promise<never>(() => undefined);
const hanging: BreakerStateStore = {
  load: never,
  open: never,
  claimProbe: never,
  probeSucceeded: never,
  reset: never,
};

/** A shared breaker (opens after one failure, half-open after 10 ms) whose store can be cut off. */
function sharedBreaker() {
  const clock = new ManualClock(0);
  const memory = new MemoryBreakerStore();
  const store = { up: true };
  const breaker = circuitBreaker({
    clock,
    strategy: { kind: 'consecutive', threshold: 1 },
    halfOpenAfterMs: 10,
    shared: { store: switchable(memory, () => store.up), key: 'k', syncIntervalMs: 0 },
  });
  return { clock, memory, breaker, store };
}

describe('shared breaker while the store is down', () => {
  it('a successful half-open probe closes the circuit locally instead of gating every later call', async () => {
    const { clock, memory, breaker, store } = sharedBreaker();
    await breaker.execute(boom).catch(() => undefined);
    expect(breaker.state).toBe('open');
    store.up = false;
    clock.advance(10);
    await expect(breaker.execute(() => 'probe')).resolves.toBe('probe');
    expect(breaker.state).toBe('closed');
    // Closed: two calls at once both run (a half-open gate would reject the second).
    let release!: () => void;
    const held = new Promise<string>((resolve) => {
      release = () => resolve('first');
    });
    const first = breaker.execute(() => held);
    await expect(breaker.execute(() => 'second')).resolves.toBe('second');
    release();
    await expect(first).resolves.toBe('first');
    // Back up: the store's own state wins again (still open there), and one probe closes it.
    store.up = true;
    await expect(breaker.execute(() => 'probe 2')).resolves.toBe('probe 2');
    expect((await memory.load('k')).state).toBe('closed');
    expect(breaker.state).toBe('closed');
  });

  it('a failed half-open probe reopens the circuit locally for halfOpenAfterMs', async () => {
    const { clock, breaker, store } = sharedBreaker();
    await breaker.execute(boom).catch(() => undefined);
    store.up = false;
    clock.advance(10);
    await expect(breaker.execute(boom)).rejects.toThrow('boom');
    expect(breaker.state).toBe('open');
    await expect(breaker.execute(() => 'too soon')).rejects.toBeInstanceOf(BrokenCircuitError);
    clock.advance(10);
    await expect(breaker.execute(() => 'probe')).resolves.toBe('probe');
    expect(breaker.state).toBe('closed');
  });

  it('a caller abort ends a call that waits on a store that does not answer', async () => {
    const breaker = circuitBreaker({
      clock: new ManualClock(0),
      shared: { store: hanging, key: 'k' },
    });
    const controller = new AbortController();
    let ran = false;
    const call = breaker.execute(() => {
      ran = true;
      return 'ran';
    }, controller.signal);
    const reason = new Error('client went away');
    controller.abort(reason);
    expect(await outcomeNow(call)).toEqual({ error: reason });
    expect(ran).toBe(false);
  });

  it('gives up on a store that does not answer within storeTimeoutMs and decides locally', async () => {
    const clock = new ManualClock(0);
    const breaker = circuitBreaker({
      clock,
      shared: { store: hanging, key: 'k', storeTimeoutMs: 50 },
    });
    const storeErrors: unknown[] = [];
    breaker.onStoreError((error) => storeErrors.push(error));
    const call = breaker.execute(() => 'local');
    expect(await outcomeNow(call)).toBe('pending');
    clock.advance(50);
    expect(await outcomeNow(call)).toEqual({ value: 'local' });
    expect(storeErrors).toHaveLength(1);
    expect(storeErrors[0]).toMatchObject({ code: 'TIMEOUT', timeoutMs: 50 });
    expect(clock.pendingTimers).toBe(0);
  });
});
