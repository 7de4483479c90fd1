/** State of a breaker shared between processes through a `BreakerStateStore`. */
export interface SharedBreakerState {
  /** `'half-open'` means a probe was claimed; an open circuit past `halfOpenAfterMs` is still `'open'` until then. */
  state: 'closed' | 'open' | 'half-open';
  /** Bumped on every transition; writers pass the generation they saw so stale writes are ignored. */
  generation: number;
  /** When the circuit last opened, in ms since the epoch (0 when never). */
  openedAt: number;
  /** The claimed probe's lease ends at this time, in ms; another process may claim after it. */
  probeUntil: number;
  /** Successful probes in the current half-open period. */
  probeSuccesses: number;
}

/** Result of `claimProbe`. */
export interface ProbeClaim {
  /** True when this caller holds the probe and may run one call. */
  claimed: boolean;
  /** The state after the claim. */
  state: SharedBreakerState;
}

/**
 * Where several breakers (in one or many processes) keep one shared state. Every method is one
 * atomic step; implementations must never let two callers claim the same probe.
 */
export interface BreakerStateStore {
  /** Reads the state of `key` (closed at generation 0 when unknown). */
  load(key: string): Promise<SharedBreakerState>;
  /** Opens the circuit at `nowMs` if its generation is still `expectedGeneration`; returns the state. */
  open(key: string, expectedGeneration: number, nowMs: number): Promise<SharedBreakerState>;
  /**
   * Claims the single half-open probe: succeeds when the circuit is open and `halfOpenAfterMs` has
   * passed, or half-open with an expired probe lease. The lease lasts `leaseMs`.
   */
  claimProbe(
    key: string,
    nowMs: number,
    halfOpenAfterMs: number,
    leaseMs: number,
  ): Promise<ProbeClaim>;
  /**
   * Records a successful probe at `expectedGeneration`, releasing the lease; closes the circuit
   * once `successesToClose` probes succeeded. Returns the state.
   */
  probeSucceeded(
    key: string,
    expectedGeneration: number,
    successesToClose: number,
  ): Promise<SharedBreakerState>;
  /** Closes the circuit unconditionally (manual reset); returns the state. */
  reset(key: string): Promise<SharedBreakerState>;
}

/** The state a key has before anyone wrote it. */
export function initialSharedState(): SharedBreakerState {
  return { state: 'closed', generation: 0, openedAt: 0, probeUntil: 0, probeSuccesses: 0 };
}

/** In-process store: shares one breaker state between breakers of the same process (and serves as the reference). */
export class MemoryBreakerStore implements BreakerStateStore {
  private readonly states = new Map<string, SharedBreakerState>();

  private get(key: string): SharedBreakerState {
    let state = this.states.get(key);
    if (state === undefined) {
      state = initialSharedState();
      this.states.set(key, state);
    }
    return state;
  }

  load(key: string): Promise<SharedBreakerState> {
    return Promise.resolve({ ...this.get(key) });
  }

  open(key: string, expectedGeneration: number, nowMs: number): Promise<SharedBreakerState> {
    const state = this.get(key);
    if (state.generation === expectedGeneration) {
      state.state = 'open';
      state.generation++;
      state.openedAt = nowMs;
      state.probeUntil = 0;
      state.probeSuccesses = 0;
    }
    return Promise.resolve({ ...state });
  }

  claimProbe(
    key: string,
    nowMs: number,
    halfOpenAfterMs: number,
    leaseMs: number,
  ): Promise<ProbeClaim> {
    const state = this.get(key);
    let claimed = false;
    if (state.state === 'open' && nowMs >= state.openedAt + halfOpenAfterMs) {
      state.state = 'half-open';
      state.generation++;
      state.probeSuccesses = 0;
      state.probeUntil = nowMs + leaseMs;
      claimed = true;
    } else if (state.state === 'half-open' && nowMs >= state.probeUntil) {
      state.probeUntil = nowMs + leaseMs;
      claimed = true;
    }
    return Promise.resolve({ claimed, state: { ...state } });
  }

  probeSucceeded(
    key: string,
    expectedGeneration: number,
    successesToClose: number,
  ): Promise<SharedBreakerState> {
    const state = this.get(key);
    if (state.generation === expectedGeneration && state.state === 'half-open') {
      state.probeSuccesses++;
      state.probeUntil = 0;
      if (state.probeSuccesses >= successesToClose) {
        state.state = 'closed';
        state.generation++;
        state.probeSuccesses = 0;
      }
    }
    return Promise.resolve({ ...state });
  }

  reset(key: string): Promise<SharedBreakerState> {
    const state = this.get(key);
    state.state = 'closed';
    state.generation++;
    state.probeUntil = 0;
    state.probeSuccesses = 0;
    return Promise.resolve({ ...state });
  }
}
