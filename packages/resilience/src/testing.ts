/**
 * Test helpers: a manual clock, and the contract suite every `BreakerStateStore` must pass.
 * Import from `@postern/resilience/testing`.
 */
import type { BreakerStateStore } from './ports.js';
import type { Clock, TimerHandle } from './ports.js';

interface PendingTimer {
  id: number;
  at: number;
  callback: () => void;
}

/** A clock that moves only when told: `advance(ms)` runs due timers in order, synchronously. */
export class ManualClock implements Clock {
  private time: number;
  private nextId = 1;
  private timers: PendingTimer[] = [];

  constructor(startMs = 0) {
    this.time = startMs;
  }

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    const timer = { id: this.nextId++, at: this.time + Math.max(0, ms), callback };
    this.timers.push(timer);
    return timer.id;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers = this.timers.filter((timer) => timer.id !== handle);
  }

  /** Timers scheduled and not yet fired or cleared. */
  get pendingTimers(): number {
    return this.timers.length;
  }

  /** Moves time forward by `ms`, firing each timer that falls due, earliest first. */
  advance(ms: number): void {
    const target = this.time + ms;
    for (;;) {
      let next: PendingTimer | undefined;
      for (const timer of this.timers)
        if (timer.at <= target && (next === undefined || timer.at < next.at)) next = timer;
      if (next === undefined) break;
      const due = next;
      this.timers = this.timers.filter((timer) => timer !== due);
      this.time = Math.max(this.time, due.at);
      due.callback();
    }
    this.time = target;
  }

  /** Sets the time (never backwards past pending timers' order; they fire on the next `advance`). */
  set(ms: number): void {
    this.time = ms;
  }
}

/** The test functions the contract suite needs; pass vitest's (or another runner's). */
export interface ContractTestApi {
  describe: (name: string, body: () => void) => void;
  it: (name: string, body: () => Promise<void>) => void;
  expect: (value: unknown) => {
    toBe(expected: unknown): void;
    toEqual(expected: unknown): void;
  };
}

/** Options of `breakerStoreContract`. */
export interface ContractOptions {
  /**
   * Moves the store's clock forward by `ms` (e.g. `(ms) => clock.advance(ms)` for a
   * `MemoryBreakerStore` on a `ManualClock`). Default: waits `ms` in real time, for stores on a real
   * clock such as Redis.
   */
  advance?: (ms: number) => void | Promise<void>;
}

function wait(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Runs the behaviour every `BreakerStateStore` must have against a store from `create`.
 * `create` is called once per test and should return a store with no state under fresh keys.
 * Times are the store's own: the suite checks them against the `now` the store reports.
 */
export function breakerStoreContract(
  name: string,
  create: () => BreakerStateStore | Promise<BreakerStateStore>,
  api: ContractTestApi,
  options: ContractOptions = {},
): void {
  const { describe, it, expect } = api;
  const advance = options.advance ?? wait;
  let counter = 0;
  const key = (): string => `contract-${Date.now().toString(36)}-${(counter++).toString(36)}`;

  describe(`${name} satisfies the BreakerStateStore contract`, () => {
    it('reads an unknown key as closed at generation 0, with the store time', async () => {
      const store = await create();
      const state = await store.load(key());
      expect(state.state).toBe('closed');
      expect(state.generation).toBe(0);
      expect(Number.isFinite(state.now)).toBe(true);
    });

    it('opens at its own time, and only when the generation matches', async () => {
      const store = await create();
      const k = key();
      const opened = await store.open(k, 0);
      expect(opened.state).toBe('open');
      expect(opened.openedAt).toBe(opened.now);
      expect(opened.generation).toBe(1);
      const stale = await store.open(k, 0);
      expect(stale.openedAt).toBe(opened.openedAt);
      expect(stale.generation).toBe(1);
    });

    it('grants the half-open probe to exactly one of many concurrent claims', async () => {
      const store = await create();
      const k = key();
      await store.open(k, 0);
      const early = await store.claimProbe(k, 3_600_000, 5_000);
      expect(early.claimed).toBe(false);
      expect(early.state.state).toBe('open');
      const claims = await Promise.all(
        Array.from({ length: 20 }, () => store.claimProbe(k, 0, 5_000)),
      );
      const winners = claims.filter((claim) => claim.claimed);
      expect(winners.length).toBe(1);
      const lease = winners[0]!.state;
      expect(lease.probeUntil).toBe(lease.now + 5_000);
      const state = await store.load(k);
      expect(state.state).toBe('half-open');
      expect(state.probeUntil).toBe(lease.probeUntil);
    });

    it('lets another caller claim once the probe lease expired on its clock', async () => {
      const store = await create();
      const k = key();
      await store.open(k, 0);
      const first = await store.claimProbe(k, 0, 50);
      expect(first.claimed).toBe(true);
      const second = await store.claimProbe(k, 0, 50);
      expect(second.claimed).toBe(second.state.now >= first.state.probeUntil);
      for (;;) {
        const remaining = first.state.probeUntil - (await store.load(k)).now;
        if (remaining <= 0) break;
        await advance(remaining);
      }
      expect((await store.claimProbe(k, 0, 50)).claimed).toBe(true);
    });

    it('closes after the required probe successes and ignores stale ones', async () => {
      const store = await create();
      const k = key();
      await store.open(k, 0);
      const claim = await store.claimProbe(k, 0, 60_000);
      const generation = claim.state.generation;
      const first = await store.probeSucceeded(k, generation, 2);
      expect(first.state).toBe('half-open');
      expect(first.probeSuccesses).toBe(1);
      expect(first.probeUntil).toBe(0);
      expect((await store.claimProbe(k, 0, 60_000)).claimed).toBe(true);
      const second = await store.probeSucceeded(k, generation, 2);
      expect(second.state).toBe('closed');
      expect(second.generation).toBe(generation + 1);
      const stale = await store.probeSucceeded(k, generation, 2);
      expect(stale.generation).toBe(generation + 1);
    });

    it('gives back an unused probe lease at once, and only the lease named', async () => {
      const store = await create();
      const k = key();
      await store.open(k, 0);
      const claim = await store.claimProbe(k, 0, 60_000);
      expect(claim.claimed).toBe(true);
      const { generation, probeUntil } = claim.state;
      expect((await store.releaseProbe(k, generation, probeUntil + 1)).probeUntil).toBe(probeUntil);
      expect((await store.releaseProbe(k, generation + 1, probeUntil)).probeUntil).toBe(probeUntil);
      expect((await store.claimProbe(k, 0, 60_000)).claimed).toBe(false);
      const released = await store.releaseProbe(k, generation, probeUntil);
      expect(released.state).toBe('half-open');
      expect(released.generation).toBe(generation);
      expect(released.probeUntil).toBe(0);
      expect(released.probeSuccesses).toBe(0);
      const next = await store.claimProbe(k, 0, 60_000);
      expect(next.claimed).toBe(true);
      expect(next.state.generation).toBe(generation);
      // Once the circuit moved on, an old lease releases nothing.
      const closed = await store.probeSucceeded(k, generation, 1);
      const late = await store.releaseProbe(k, generation, next.state.probeUntil);
      expect(late.state).toBe('closed');
      expect(late.generation).toBe(closed.generation);
    });

    it('reopens on a failed probe at its own time, and resets on demand', async () => {
      const store = await create();
      const k = key();
      const opened = await store.open(k, 0);
      const claim = await store.claimProbe(k, 0, 60_000);
      const reopened = await store.open(k, claim.state.generation);
      expect(reopened.state).toBe('open');
      expect(reopened.openedAt).toBe(reopened.now);
      expect(reopened.openedAt >= opened.openedAt).toBe(true);
      expect(reopened.probeUntil).toBe(0);
      const reset = await store.reset(k);
      expect(reset.state).toBe('closed');
      expect(reset.generation).toBe(reopened.generation + 1);
    });
  });
}
