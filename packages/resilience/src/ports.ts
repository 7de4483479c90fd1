/**
 * The ports this package consumes: small structural interfaces that callers implement or inject.
 * Each has a default here (`systemClock`, `MemoryBreakerStore`) or an adapter on a subpath
 * (`RedisBreakerStore` on `@postern/resilience/redis`, which takes a `RedisCommandClient`).
 */

/** Opaque handle returned by `Clock.setTimeout`. */
export type TimerHandle = unknown;

/** Time source and timer scheduler; inject a manual clock in tests instead of sleeping. */
export interface Clock {
  /** Current time in ms (wall clock: breaker state saved in one process is read by another). */
  now(): number;
  /** Schedules `callback` after `ms`; `unref` lets the process exit while the timer is pending. */
  setTimeout(callback: () => void, ms: number, unref: boolean): TimerHandle;
  /** Cancels a timer from `setTimeout`; cancelling twice or after it fired is a no-op. */
  clearTimeout(handle: TimerHandle): void;
}

/**
 * State of a breaker shared between processes through a `BreakerStateStore`. Every time in it is
 * on the store's clock (Redis server time for `RedisBreakerStore`), never a caller's: processes
 * whose clocks disagree still agree on when the circuit opened and when a probe is due.
 */
export interface SharedBreakerState {
  /** `'half-open'` means a probe was claimed; an open circuit past `halfOpenAfterMs` is still `'open'` until then. */
  state: 'closed' | 'open' | 'half-open';
  /** Bumped on every transition; writers pass the generation they saw so stale writes are ignored. */
  generation: number;
  /** When the circuit last opened, in ms since the epoch on the store's clock (0 when never). */
  openedAt: number;
  /** The claimed probe's lease ends at this time, in ms on the store's clock (0 when no lease is held); another caller may claim after it. */
  probeUntil: number;
  /** Successful probes in the current half-open period. */
  probeSuccesses: number;
  /** The store's clock when it produced this state, in ms since the epoch: breakers measure `openedAt` against it, not against their own clock. */
  now: number;
}

/** Result of `claimProbe`. */
export interface ProbeClaim {
  /** True when this caller holds the probe and may run one call. */
  claimed: boolean;
  /** The state after the claim; when claimed, `generation` and `probeUntil` name the lease (see `releaseProbe`). */
  state: SharedBreakerState;
}

/**
 * Where several breakers (in one or many processes) keep one shared state. Every method is one
 * atomic step; implementations must never let two callers claim the same probe. Every decision
 * that depends on time reads the store's own clock, so callers pass durations, never timestamps.
 */
export interface BreakerStateStore {
  /** Reads the state of `key` (closed at generation 0 when unknown). */
  load(key: string): Promise<SharedBreakerState>;
  /** Opens the circuit now (on the store's clock) if its generation is still `expectedGeneration`; returns the state. */
  open(key: string, expectedGeneration: number): Promise<SharedBreakerState>;
  /**
   * Claims the single half-open probe: succeeds when the circuit is open and `halfOpenAfterMs` has
   * passed since `openedAt`, or half-open with no lease or an expired one, all on the store's clock.
   * The lease lasts `leaseMs`.
   */
  claimProbe(key: string, halfOpenAfterMs: number, leaseMs: number): Promise<ProbeClaim>;
  /**
   * Records a successful probe at `expectedGeneration`, releasing the lease; closes the circuit
   * once `successesToClose` probes succeeded. Returns the state.
   */
  probeSucceeded(
    key: string,
    expectedGeneration: number,
    successesToClose: number,
  ): Promise<SharedBreakerState>;
  /**
   * Gives back a claimed probe that recorded nothing (its caller aborted, or it was never run):
   * when the circuit is still half-open at `expectedGeneration` and the lease still ends at
   * `probeUntil` (it is the one this caller claimed), the lease ends now, so another caller may
   * claim at once. Changes nothing else. Returns the state.
   */
  releaseProbe(
    key: string,
    expectedGeneration: number,
    probeUntil: number,
  ): Promise<SharedBreakerState>;
  /** Closes the circuit unconditionally (manual reset); returns the state. */
  reset(key: string): Promise<SharedBreakerState>;
}

/** The part of an ioredis client (or cluster) this store uses. */
export interface RedisCommandClient {
  defineCommand(name: string, definition: { numberOfKeys: number; lua: string }): void;
}
