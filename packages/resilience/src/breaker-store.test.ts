import { describe, expect, it } from 'vitest';
import { BrokenCircuitError, circuitBreaker, MemoryBreakerStore } from './index.js';
import type { BreakerStateStore, ProbeClaim, SharedBreakerState } from './index.js';
import { breakerStoreContract, ManualClock } from './testing.js';

const contractClock = new ManualClock(1_000);
breakerStoreContract(
  'MemoryBreakerStore on a manual clock',
  () => new MemoryBreakerStore({ clock: contractClock }),
  { describe, it, expect },
  { advance: (ms) => contractClock.advance(ms) },
);
breakerStoreContract('MemoryBreakerStore on the system clock', () => new MemoryBreakerStore(), {
  describe,
  it,
  expect,
});

const boom = (): Promise<never> => Promise.reject(new Error('boom'));

/** Two failures in a row: opens a breaker made by `shared` (threshold 2). */
async function trip(breaker: ReturnType<typeof circuitBreaker>): Promise<void> {
  for (let i = 0; i < 2; i += 1) await breaker.execute(boom).catch(() => undefined);
}

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
    const clock = new ManualClock(10_000);
    const store = new MemoryBreakerStore({ clock });
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
    const clock = new ManualClock(0);
    const store = new MemoryBreakerStore({ clock });
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
    const clock = new ManualClock(0);
    const store = new MemoryBreakerStore({ clock });
    const a = shared(store, clock);
    const b = shared(store, clock);
    await trip(a);
    clock.advance(100);
    await expect(b.execute(boom)).rejects.toThrow('boom');
    const state = await store.load('relay');
    expect(state.state).toBe('open');
    expect(state.openedAt).toBe(100);
    await expect(a.execute(() => 1)).rejects.toBeInstanceOf(BrokenCircuitError);
  });

  it('reset closes the shared circuit; isolate holds this breaker open locally', async () => {
    const clock = new ManualClock(0);
    const store = new MemoryBreakerStore({ clock });
    const a = shared(store, clock);
    await trip(a);
    await a.reset();
    expect((await store.load('relay')).state).toBe('closed');
    await expect(a.execute(() => 2)).resolves.toBe(2);
    const handle = a.isolate();
    await expect(a.execute(() => 3)).rejects.toBeInstanceOf(BrokenCircuitError);
    handle.dispose();
    await expect(a.execute(() => 4)).resolves.toBe(4);
  });

  it('after an isolation ends, adopts what the shared circuit did meanwhile', async () => {
    const clock = new ManualClock(0);
    const store = new MemoryBreakerStore({ clock });
    const isolatedOne = circuitBreaker({
      clock,
      halfOpenAfterMs: 100,
      shared: { store, key: 'iso', syncIntervalMs: 60_000 },
    });
    await isolatedOne.execute(() => 1);
    const handle = isolatedOne.isolate();
    await store.open('iso', (await store.load('iso')).generation);
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
      releaseProbe: () => Promise.reject(new Error('redis down')),
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
    const memory = new MemoryBreakerStore({ clock });
    let claimFails = false;
    const store: BreakerStateStore = {
      load: (key) => memory.load(key),
      open: (key, generation) => memory.open(key, generation),
      claimProbe: (key, after, lease) =>
        claimFails ? Promise.reject(new Error('timeout')) : memory.claimProbe(key, after, lease),
      probeSucceeded: (key, generation, needed) => memory.probeSucceeded(key, generation, needed),
      releaseProbe: (key, generation, until) => memory.releaseProbe(key, generation, until),
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
    const clock = new ManualClock(0);
    const store = new MemoryBreakerStore({ clock });
    const breaker = circuitBreaker({
      clock,
      halfOpenAfterMs: 100,
      shared: { store, key: 'x', syncIntervalMs: 1_000 },
    });
    await breaker.execute(() => 1);
    const state: SharedBreakerState = await store.open('x', (await store.load('x')).generation);
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
    open: (key, generation) => (up() ? memory.open(key, generation) : down()),
    claimProbe: (key, after, lease) => (up() ? memory.claimProbe(key, after, lease) : down()),
    probeSucceeded: (key, generation, needed) =>
      up() ? memory.probeSucceeded(key, generation, needed) : down(),
    releaseProbe: (key, generation, until) =>
      up() ? memory.releaseProbe(key, generation, until) : down(),
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
  releaseProbe: never,
  reset: never,
};

/** A shared breaker (opens after one failure, half-open after 10 ms) whose store can be cut off. */
function sharedBreaker() {
  const clock = new ManualClock(0);
  const memory = new MemoryBreakerStore({ clock });
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

/** A store that forwards to `memory` but hands claims to `onClaim`, to hold or watch them. */
function claimsVia(
  memory: MemoryBreakerStore,
  onClaim: (claim: Promise<ProbeClaim>) => Promise<ProbeClaim>,
): BreakerStateStore {
  return {
    load: (key) => memory.load(key),
    open: (key, generation) => memory.open(key, generation),
    claimProbe: (key, after, lease) => onClaim(memory.claimProbe(key, after, lease)),
    probeSucceeded: (key, generation, needed) => memory.probeSucceeded(key, generation, needed),
    releaseProbe: (key, generation, until) => memory.releaseProbe(key, generation, until),
    reset: (key) => memory.reset(key),
  };
}

/** Work that runs until the caller aborts, then rejects with the caller's reason. */
function untilAborted(started: () => void = () => undefined) {
  return ({ signal }: { signal: AbortSignal }): Promise<never> =>
    new Promise<never>((_, reject) => {
      started();
      signal.addEventListener('abort', () => reject(signal.reason as Error));
    });
}

describe('shared breaker timing is on the store clock', () => {
  it('breakers whose clocks are skewed by more than halfOpenAfterMs agree on open and half-open', async () => {
    const storeClock = new ManualClock(1_000_000);
    const store = new MemoryBreakerStore({ clock: storeClock });
    const opener = new ManualClock(1_000_000);
    const ahead = new ManualClock(1_000_000 + 60_000);
    const behind = new ManualClock(1_000_000 - 60_000);
    const clocks = [storeClock, opener, ahead, behind];
    const [a, b, c] = [opener, ahead, behind].map((clock) => shared(store, clock)) as [
      ReturnType<typeof circuitBreaker>,
      ReturnType<typeof circuitBreaker>,
      ReturnType<typeof circuitBreaker>,
    ];
    await trip(a);
    expect((await store.load('relay')).openedAt).toBe(1_000_000);
    // Running ahead by 60 s does not make a circuit opened just now due for a probe.
    let ran = false;
    const early = await b
      .execute(() => {
        ran = true;
        return 'too early';
      })
      .catch((error: unknown) => error);
    expect(BrokenCircuitError.isInstance(early)).toBe(true);
    expect((early as BrokenCircuitError).retryAfterMs).toBe(100);
    expect(ran).toBe(false);
    // Running behind by 60 s does not add 60 s to the wait.
    const late = await c.execute(() => 'x').catch((error: unknown) => error);
    expect((late as BrokenCircuitError).retryAfterMs).toBe(100);
    for (const clock of clocks) clock.advance(99);
    await expect(b.execute(() => 'x')).rejects.toBeInstanceOf(BrokenCircuitError);
    for (const clock of clocks) clock.advance(1);
    await expect(c.execute(() => 'probe')).resolves.toBe('probe');
    expect((await store.load('relay')).state).toBe('closed');
    await expect(b.execute(() => 'closed')).resolves.toBe('closed');
  });

  it('a failed probe reopens at the store time, whatever the prober’s clock says', async () => {
    const storeClock = new ManualClock(500_000);
    const store = new MemoryBreakerStore({ clock: storeClock });
    const clock = new ManualClock(0);
    const breaker = shared(store, clock);
    await breaker.execute(boom).catch(() => undefined);
    await breaker.execute(boom).catch(() => undefined);
    storeClock.advance(100);
    clock.advance(100);
    await expect(breaker.execute(boom)).rejects.toThrow('boom');
    expect(await store.load('relay')).toMatchObject({ state: 'open', openedAt: 500_100 });
    // Saved state is on this breaker's own clock, so it restores correctly here.
    expect(breaker.toJSON()).toMatchObject({ state: 'open', openedAt: 100 });
  });
});

describe('shared half-open probe and the caller abort', () => {
  it('a probe whose caller aborted gives its lease back at once: another breaker probes right after', async () => {
    const clock = new ManualClock(0);
    const store = new MemoryBreakerStore({ clock });
    const a = shared(store, clock);
    const b = shared(store, clock);
    await trip(a);
    clock.advance(100);
    const controller = new AbortController();
    let started!: () => void;
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    const probe = a.execute(untilAborted(started), controller.signal);
    await Promise.race([running, probe]);
    await expect(b.execute(() => 'x')).rejects.toBeInstanceOf(BrokenCircuitError);
    const reason = new Error('client went away');
    controller.abort(reason);
    await expect(probe).rejects.toBe(reason);
    expect(a.stats()).toMatchObject({ ignored: 1, failures: 2, probesInFlight: 0 });
    // No time passes: the lease (1_000 ms) was given back, not left to expire.
    expect((await store.load('relay')).probeUntil).toBe(0);
    await expect(b.execute(() => 'second probe')).resolves.toBe('second probe');
    expect((await store.load('relay')).state).toBe('closed');
  });

  it('a caller abort while the claim is on its way gives back the lease the claim took', async () => {
    const clock = new ManualClock(0);
    const memory = new MemoryBreakerStore({ clock });
    let hold = true;
    let land!: () => void;
    const landed = new Promise<void>((resolve) => {
      land = resolve;
    });
    const store = claimsVia(memory, (claim) => (hold ? landed.then(() => claim) : claim));
    const a = shared(store, clock);
    const b = shared(memory, clock);
    await trip(a);
    clock.advance(100);
    const controller = new AbortController();
    let ran = false;
    const call = a.execute(() => {
      ran = true;
      return 'ran';
    }, controller.signal);
    await new Promise((resolve) => setImmediate(resolve));
    // The claim has landed in the store; its answer has not reached the caller yet.
    expect((await memory.load('relay')).probeUntil).toBe(1_100);
    const reason = new Error('client went away');
    controller.abort(reason);
    await expect(call).rejects.toBe(reason);
    hold = false;
    land();
    await new Promise((resolve) => setImmediate(resolve));
    expect(ran).toBe(false);
    expect((await memory.load('relay')).probeUntil).toBe(0);
    await expect(b.execute(() => 'probe')).resolves.toBe('probe');
  });

  it('a claim answered after storeTimeoutMs does not keep the lease from everyone else', async () => {
    const clock = new ManualClock(0);
    const memory = new MemoryBreakerStore({ clock });
    let land!: () => void;
    const landed = new Promise<void>((resolve) => {
      land = resolve;
    });
    let hold = true;
    const slow = claimsVia(memory, (claim) => (hold ? landed.then(() => claim) : claim));
    const a = circuitBreaker({
      clock,
      strategy: { kind: 'consecutive', threshold: 1 },
      halfOpenAfterMs: 100,
      shared: { store: slow, key: 'relay', syncIntervalMs: 0, storeTimeoutMs: 50 },
    });
    const b = shared(memory, clock);
    await a.execute(boom).catch(() => undefined);
    clock.advance(100);
    const storeErrors: unknown[] = [];
    a.onStoreError((error) => storeErrors.push(error));
    const call = a.execute(() => 'local probe');
    await new Promise((resolve) => setImmediate(resolve));
    clock.advance(50);
    // Decided locally after the timeout, as before.
    await expect(call).resolves.toBe('local probe');
    expect(storeErrors).toMatchObject([{ code: 'TIMEOUT' }]);
    hold = false;
    land();
    await new Promise((resolve) => setImmediate(resolve));
    expect((await memory.load('relay')).probeUntil).toBe(0);
    await expect(b.execute(() => 'probe')).resolves.toBe('probe');
  });

  it('a caller abort landing just as the claim is answered never leaves the lease held', async () => {
    const clock = new ManualClock(0);
    const memory = new MemoryBreakerStore({ clock });
    const controller = new AbortController();
    const reason = new Error('client went away');
    let armed = false;
    const store = claimsVia(memory, (claim) => {
      // Abort one reaction after the breaker's own: between the answer and the continuation.
      if (armed) queueMicrotask(() => void claim.then(() => controller.abort(reason)));
      return claim;
    });
    const a = shared(store, clock);
    const b = shared(memory, clock);
    await trip(a);
    clock.advance(100);
    armed = true;
    let ran = false;
    await expect(
      a.execute(() => {
        ran = true;
        return 'ran';
      }, controller.signal),
    ).rejects.toBe(reason);
    expect(ran).toBe(false);
    expect((await memory.load('relay')).probeUntil).toBe(0);
    await expect(b.execute(() => 'probe')).resolves.toBe('probe');
  });

  it('a lease claimed while the breaker became isolated is handed straight back', async () => {
    const clock = new ManualClock(0);
    const memory = new MemoryBreakerStore({ clock });
    let armed = false;
    let handle: { dispose(): void } | undefined;
    const store = claimsVia(memory, (claim) =>
      claim.then((value) => {
        // The breaker is isolated while its claim is answered.
        if (armed) handle = a.isolate();
        return value;
      }),
    );
    const a = shared(store, clock);
    const b = shared(memory, clock);
    await trip(a);
    clock.advance(100);
    armed = true;
    await expect(a.execute(() => 'ran')).rejects.toMatchObject({ isolated: true });
    handle?.dispose();
    expect((await memory.load('relay')).probeUntil).toBe(0);
    await expect(b.execute(() => 'probe')).resolves.toBe('probe');
  });
});
