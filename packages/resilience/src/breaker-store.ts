import type { BreakerStateStore, Clock, ProbeClaim, SharedBreakerState } from './ports.js';
import { systemClock } from './clock.js';
import { InvalidOptionError } from './errors.js';

/** Options of `MemoryBreakerStore`. */
export interface MemoryBreakerStoreOptions {
  /**
   * The store's clock: every time in the shared state (when the circuit opened, when a probe lease
   * ends) is read from it, whatever clock each breaker has. Default: the system clock.
   */
  clock?: Pick<Clock, 'now'>;
}

type StoredState = Omit<SharedBreakerState, 'now'>;

/** The state a key has before anyone wrote it. */
function initialState(): StoredState {
  return { state: 'closed', generation: 0, openedAt: 0, probeUntil: 0, probeSuccesses: 0 };
}

/** In-process store: shares one breaker state between breakers of the same process (and serves as the reference). */
export class MemoryBreakerStore implements BreakerStateStore {
  private readonly states = new Map<string, StoredState>();
  private readonly clock: Pick<Clock, 'now'>;

  constructor(options: MemoryBreakerStoreOptions = {}) {
    const clock = options.clock ?? systemClock;
    if (typeof clock !== 'object' || clock === null || typeof clock.now !== 'function') {
      throw new InvalidOptionError('clock', 'must be an object with now()', clock);
    }
    this.clock = clock;
  }

  private get(key: string): StoredState {
    let state = this.states.get(key);
    if (state === undefined) {
      state = initialState();
      this.states.set(key, state);
    }
    return state;
  }

  private reply(state: StoredState, now: number): SharedBreakerState {
    return { ...state, now };
  }

  load(key: string): Promise<SharedBreakerState> {
    return Promise.resolve(this.reply(this.get(key), this.clock.now()));
  }

  open(key: string, expectedGeneration: number): Promise<SharedBreakerState> {
    const now = this.clock.now();
    const state = this.get(key);
    if (state.generation === expectedGeneration) {
      state.state = 'open';
      state.generation++;
      state.openedAt = now;
      state.probeUntil = 0;
      state.probeSuccesses = 0;
    }
    return Promise.resolve(this.reply(state, now));
  }

  claimProbe(key: string, halfOpenAfterMs: number, leaseMs: number): Promise<ProbeClaim> {
    const now = this.clock.now();
    const state = this.get(key);
    let claimed = false;
    if (state.state === 'open' && now >= state.openedAt + halfOpenAfterMs) {
      state.state = 'half-open';
      state.generation++;
      state.probeSuccesses = 0;
      state.probeUntil = now + leaseMs;
      claimed = true;
    } else if (state.state === 'half-open' && now >= state.probeUntil) {
      state.probeUntil = now + leaseMs;
      claimed = true;
    }
    return Promise.resolve({ claimed, state: this.reply(state, now) });
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
    return Promise.resolve(this.reply(state, this.clock.now()));
  }

  releaseProbe(
    key: string,
    expectedGeneration: number,
    probeUntil: number,
  ): Promise<SharedBreakerState> {
    const state = this.get(key);
    if (
      state.state === 'half-open' &&
      state.generation === expectedGeneration &&
      state.probeUntil === probeUntil
    ) {
      state.probeUntil = 0;
    }
    return Promise.resolve(this.reply(state, this.clock.now()));
  }

  reset(key: string): Promise<SharedBreakerState> {
    const state = this.get(key);
    state.state = 'closed';
    state.generation++;
    state.probeUntil = 0;
    state.probeSuccesses = 0;
    return Promise.resolve(this.reply(state, this.clock.now()));
  }
}
