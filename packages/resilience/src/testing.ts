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

/**
 * Runs the behaviour every `BreakerStateStore` must have against a store from `create`.
 * `create` is called once per test and should return a store with no state under fresh keys.
 */
export function breakerStoreContract(
  name: string,
  create: () => BreakerStateStore | Promise<BreakerStateStore>,
  api: ContractTestApi,
): void {
  const { describe, it, expect } = api;
  let counter = 0;
  const key = (): string => `contract-${Date.now().toString(36)}-${(counter++).toString(36)}`;

  describe(`${name} satisfies the BreakerStateStore contract`, () => {
    it('reads an unknown key as closed at generation 0', async () => {
      const store = await create();
      const state = await store.load(key());
      expect(state.state).toBe('closed');
      expect(state.generation).toBe(0);
    });

    it('opens only when the generation matches', async () => {
      const store = await create();
      const k = key();
      const opened = await store.open(k, 0, 1_000);
      expect(opened.state).toBe('open');
      expect(opened.openedAt).toBe(1_000);
      expect(opened.generation).toBe(1);
      const stale = await store.open(k, 0, 2_000);
      expect(stale.openedAt).toBe(1_000);
      expect(stale.generation).toBe(1);
    });

    it('grants the half-open probe to exactly one of many concurrent claims', async () => {
      const store = await create();
      const k = key();
      await store.open(k, 0, 1_000);
      const early = await store.claimProbe(k, 1_500, 1_000, 5_000);
      expect(early.claimed).toBe(false);
      const claims = await Promise.all(
        Array.from({ length: 20 }, () => store.claimProbe(k, 2_000, 1_000, 5_000)),
      );
      expect(claims.filter((claim) => claim.claimed).length).toBe(1);
      const state = await store.load(k);
      expect(state.state).toBe('half-open');
      expect(state.probeUntil).toBe(7_000);
    });

    it('lets another caller claim once the probe lease expired', async () => {
      const store = await create();
      const k = key();
      await store.open(k, 0, 0);
      expect((await store.claimProbe(k, 1_000, 1_000, 500)).claimed).toBe(true);
      expect((await store.claimProbe(k, 1_400, 1_000, 500)).claimed).toBe(false);
      expect((await store.claimProbe(k, 1_500, 1_000, 500)).claimed).toBe(true);
    });

    it('closes after the required probe successes and ignores stale ones', async () => {
      const store = await create();
      const k = key();
      await store.open(k, 0, 0);
      const claim = await store.claimProbe(k, 10, 10, 100);
      const generation = claim.state.generation;
      const first = await store.probeSucceeded(k, generation, 2);
      expect(first.state).toBe('half-open');
      expect(first.probeSuccesses).toBe(1);
      expect(first.probeUntil).toBe(0);
      expect((await store.claimProbe(k, 20, 10, 100)).claimed).toBe(true);
      const second = await store.probeSucceeded(k, generation, 2);
      expect(second.state).toBe('closed');
      expect(second.generation).toBe(generation + 1);
      const stale = await store.probeSucceeded(k, generation, 2);
      expect(stale.generation).toBe(generation + 1);
    });

    it('reopens on a failed probe and resets on demand', async () => {
      const store = await create();
      const k = key();
      await store.open(k, 0, 0);
      const claim = await store.claimProbe(k, 10, 10, 100);
      const reopened = await store.open(k, claim.state.generation, 50);
      expect(reopened.state).toBe('open');
      expect(reopened.openedAt).toBe(50);
      const reset = await store.reset(k);
      expect(reset.state).toBe('closed');
      expect(reset.generation).toBe(reopened.generation + 1);
    });
  });
}
