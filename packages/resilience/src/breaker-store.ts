import type { BreakerStateStore, ProbeClaim, SharedBreakerState } from './ports.js';

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
