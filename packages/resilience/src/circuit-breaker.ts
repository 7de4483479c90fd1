/* eslint-disable @typescript-eslint/prefer-promise-reject-errors -- rejections pass on the work's own errors and the caller's abort reason unchanged, whatever their type */
import type { BreakerStateStore, ProbeClaim, SharedBreakerState } from './ports.js';
import type { BreakerStrategyOptions, Strategy } from './breaker-strategy.js';
import { createStrategy } from './breaker-strategy.js';
import type { Clock } from './ports.js';
import { systemClock } from './clock.js';
import { BrokenCircuitError, InvalidOptionError, TimeoutError } from './errors.js';
import type { Disposable, Event } from './events.js';
import { Emitter } from './events.js';
import type { Link, Work } from './policy.js';
import { BasePolicy, NO_CHAIN, RUN, runNext } from './policy.js';
import { Scope } from './scope.js';
import { checkFunction, checkNumber } from './validate.js';

/** States of a circuit breaker. */
export type CircuitState = 'closed' | 'open' | 'half-open' | 'isolated';

/** Saved breaker state, from `toJSON()`, accepted by `initialState`. */
export interface CircuitBreakerSnapshot {
  /** `'open'` also covers half-open and isolated circuits: they restart open. */
  state: 'closed' | 'open';
  /** When the circuit opened, in ms since the epoch (0 when closed). */
  openedAt: number;
  /** Failed probes since the circuit last closed (grows the wait when `maxHalfOpenAfterMs` allows). Default: 0. */
  reopenings?: number;
}

/** Passed to `onStateChange` listeners. */
export interface StateChange {
  from: CircuitState;
  to: CircuitState;
}

/** Passed to `onFailure` listeners: the error thrown, or the result `isFailureResult` rejected. */
export interface FailureEvent {
  error: unknown;
  result: unknown;
}

/** Counters since the breaker was created. */
export interface CircuitBreakerStats {
  state: CircuitState;
  /** Calls that succeeded (or failed with an error `isFailure` does not count). */
  successes: number;
  /** Calls that failed with an error `isFailure` counts. */
  failures: number;
  /** Calls slower than `slowCallMs`. */
  slowCalls: number;
  /** Calls rejected with `BrokenCircuitError` without running. */
  rejections: number;
  /** Results not counted: they started before the last state change, or the caller aborted them. */
  ignored: number;
  /** Half-open probes running now. */
  probesInFlight: number;
}

/** Shares one circuit between breakers (and processes) through a store. */
export interface SharedStateOptions {
  /** Where the state lives: `MemoryBreakerStore`, `RedisBreakerStore` from `@postern/resilience/redis`, or yours. */
  store: BreakerStateStore;
  /** Name of the circuit in the store; breakers with the same key share one circuit. Required. */
  key: string;
  /** How stale the local copy of the shared state may get before a call re-reads it, in ms. Default: 1_000. */
  syncIntervalMs?: number;
  /**
   * How long a claimed half-open probe is reserved, in ms on the store's clock (a crashed prober
   * frees it after this; a probe that records nothing, e.g. its caller aborted, gives it back at
   * once). Default: 30_000.
   */
  probeLeaseMs?: number;
  /** Longest wait for one store operation, in ms; past it the call is decided locally (as on a store error). Default: 1_000. */
  storeTimeoutMs?: number;
}

/** Options of `circuitBreaker()`. */
export interface CircuitBreakerOptions {
  /** How a closed circuit decides to open. Default: `{ kind: 'consecutive', threshold: 5 }`. */
  strategy?: BreakerStrategyOptions;
  /** Time an open circuit rejects calls before it lets probes through, in ms. Default: 30_000. */
  halfOpenAfterMs?: number;
  /** Longest wait before probing, in ms: each failed probe multiplies the wait by `halfOpenBackoffFactor` up to this; closing resets it. Default: `halfOpenAfterMs` (constant wait). */
  maxHalfOpenAfterMs?: number;
  /** Growth of the wait after each failed probe, when `maxHalfOpenAfterMs` allows growth. Default: 2. */
  halfOpenBackoffFactor?: number;
  /** Probes allowed to run at once while half-open; calls beyond it are rejected, not queued. Default: 1. */
  halfOpenMaxProbes?: number;
  /** Successful probes needed to close the circuit. Default: 1. */
  successesToClose?: number;
  /** A call slower than this counts as slow (a failure signal), in ms. Default: none (no timing). */
  slowCallMs?: number;
  /** Decides whether an error counts against the circuit (e.g. a 4xx does not). Default: every error. */
  isFailure?: (error: unknown) => boolean;
  /** Decides whether a value the call resolved to counts as a failure (e.g. an HTTP 503 response). Default: none. */
  isFailureResult?: (value: unknown) => boolean;
  /**
   * Time source for everything this breaker decides on its own. With `shared`, when the circuit
   * opened and when a probe is due are decided on the store's clock instead, so breakers whose
   * clocks are skewed still agree. Default: the system clock.
   */
  clock?: Clock;
  /** State to start from, e.g. a saved `toJSON()`. Default: closed. */
  initialState?: CircuitBreakerSnapshot;
  /** Share the circuit through a store. Default: none (state is local to this object). */
  shared?: SharedStateOptions;
}

const IGNORED = -1;
const FAILURE = 1;
const SLOW = 2;

interface Handlers {
  generation: number;
  ok: (value: unknown) => void;
  fail: (error: unknown) => void;
}

/** The scope the reused handlers classify with: no caller signal, so never caller-aborted. */
const UNSIGNALLED: Scope = Scope.root(undefined);

interface SharedContext {
  store: BreakerStateStore;
  key: string;
  syncIntervalMs: number;
  probeLeaseMs: number;
  storeTimeoutMs: number;
  syncedAt: number;
  generation: number;
}

/** Circuit breaker: closed → open → half-open → closed, decided from the clock on each call (no background timer). */
export class CircuitBreakerPolicy extends BasePolicy {
  private current: CircuitState = 'closed';
  private openedAt = 0;
  private generation = 0;
  private probes = 0;
  private probeSuccesses = 0;
  private isolations = 0;
  private settledAt = 0;
  private handlers: Handlers = { generation: -1, ok: () => undefined, fail: () => undefined };
  private readonly strategy: Strategy;
  private readonly halfOpenAfterMs: number;
  private readonly maxHalfOpenAfterMs: number;
  private readonly halfOpenBackoffFactor: number;
  private reopenings = 0;
  private readonly halfOpenMaxProbes: number;
  private readonly successesToClose: number;
  private readonly slowCallMs: number | undefined;
  private readonly isFailure: ((error: unknown) => boolean) | undefined;
  private readonly isFailureResult: ((value: unknown) => boolean) | undefined;
  private readonly clock: Clock;
  private readonly timed: boolean;
  private readonly shared: SharedContext | undefined;
  // Counters are plain fields: one increment per call, no object to reach through.
  private successes = 0;
  private failures = 0;
  private slowCalls = 0;
  private rejections = 0;
  private ignored = 0;
  /** True when a closed call needs nothing but counting on success: no result check, no timing, no store. */
  private readonly plain: boolean;
  private readonly stateEmitter = new Emitter<StateChange>();
  private readonly successEmitter = new Emitter<void>();
  private readonly failureEmitter = new Emitter<FailureEvent>();
  private readonly rejectedEmitter = new Emitter<BrokenCircuitError>();
  private readonly storeErrorEmitter = new Emitter<unknown>();

  /** Fires on every transition. */
  readonly onStateChange: Event<StateChange> = this.stateEmitter.event;
  /** Fires when a call counts as a success. */
  readonly onSuccess: Event<void> = this.successEmitter.event;
  /** Fires when a call counts as a failure. */
  readonly onFailure: Event<FailureEvent> = this.failureEmitter.event;
  /** Fires when a call is rejected with `BrokenCircuitError`. */
  readonly onRejected: Event<BrokenCircuitError> = this.rejectedEmitter.event;
  /** Fires when the shared store fails; the breaker then decides locally for that call. */
  readonly onStoreError: Event<unknown> = this.storeErrorEmitter.event;

  constructor(options: CircuitBreakerOptions = {}) {
    super();
    this.strategy = createStrategy(options.strategy);
    this.halfOpenAfterMs = checkNumber('halfOpenAfterMs', options.halfOpenAfterMs ?? 30_000);
    this.maxHalfOpenAfterMs = checkNumber(
      'maxHalfOpenAfterMs',
      options.maxHalfOpenAfterMs ?? this.halfOpenAfterMs,
      {
        min: this.halfOpenAfterMs,
      },
    );
    this.halfOpenBackoffFactor = checkNumber(
      'halfOpenBackoffFactor',
      options.halfOpenBackoffFactor ?? 2,
      { min: 1 },
    );
    this.halfOpenMaxProbes = checkNumber('halfOpenMaxProbes', options.halfOpenMaxProbes ?? 1, {
      min: 1,
      integer: true,
    });
    this.successesToClose = checkNumber('successesToClose', options.successesToClose ?? 1, {
      min: 1,
      integer: true,
    });
    this.slowCallMs =
      options.slowCallMs === undefined ? undefined : checkNumber('slowCallMs', options.slowCallMs);
    checkFunction('isFailure', options.isFailure);
    this.isFailure = options.isFailure;
    checkFunction('isFailureResult', options.isFailureResult);
    this.isFailureResult = options.isFailureResult;
    this.clock = options.clock ?? systemClock;
    this.timed = this.slowCallMs !== undefined || this.strategy.needsTime;
    this.plain = !this.timed && this.isFailureResult === undefined && options.shared === undefined;
    const initial = options.initialState;
    if (initial !== undefined) {
      if (
        typeof initial !== 'object' ||
        initial === null ||
        (initial.state !== 'closed' && initial.state !== 'open')
      ) {
        throw new InvalidOptionError(
          'initialState.state',
          "must be 'closed' or 'open'",
          (initial as { state?: unknown } | null)?.state,
        );
      }
      this.current = initial.state;
      this.openedAt = checkNumber('initialState.openedAt', initial.openedAt);
      this.reopenings = checkNumber('initialState.reopenings', initial.reopenings ?? 0, {
        integer: true,
      });
    }
    const shared = options.shared;
    if (shared !== undefined) {
      if (typeof shared.key !== 'string' || shared.key === '') {
        throw new InvalidOptionError('shared.key', 'must be a non-empty string', shared.key);
      }
      if (typeof shared.store !== 'object' || shared.store === null) {
        throw new InvalidOptionError('shared.store', 'must be a BreakerStateStore', shared.store);
      }
      this.shared = {
        store: shared.store,
        key: shared.key,
        syncIntervalMs: checkNumber('shared.syncIntervalMs', shared.syncIntervalMs ?? 1_000),
        probeLeaseMs: checkNumber('shared.probeLeaseMs', shared.probeLeaseMs ?? 30_000, { min: 1 }),
        storeTimeoutMs: checkNumber('shared.storeTimeoutMs', shared.storeTimeoutMs ?? 1_000, {
          min: 1,
          max: 2_147_483_647,
        }),
        syncedAt: -Infinity,
        generation: -1,
      };
    }
  }

  /** The current state; an open circuit past `halfOpenAfterMs` reports (and becomes) half-open. */
  get state(): CircuitState {
    return this.refresh(this.clock.now());
  }

  /** Counters since creation. */
  stats(): CircuitBreakerStats {
    return {
      state: this.state,
      successes: this.successes,
      failures: this.failures,
      slowCalls: this.slowCalls,
      rejections: this.rejections,
      ignored: this.ignored,
      probesInFlight: this.probes,
    };
  }

  /** Holds the circuit open (rejecting every call) until every returned handle is disposed. */
  isolate(): Disposable {
    this.isolations++;
    if (this.isolations === 1) this.transition('isolated', this.clock.now());
    let released = false;
    return {
      dispose: () => {
        if (released) return;
        released = true;
        if (--this.isolations === 0) {
          this.transition('closed', this.clock.now());
          // Re-read the shared state on the next call: it may have moved on while we were isolated.
          if (this.shared !== undefined) {
            this.shared.syncedAt = -Infinity;
            this.shared.generation = -1;
          }
        }
      },
    };
  }

  /** Closes the circuit now (and in the shared store, if any), forgetting recorded failures. */
  async reset(): Promise<void> {
    if (this.isolations > 0) return;
    this.transition('closed', this.clock.now());
    if (this.shared !== undefined) {
      const state = await this.shared.store.reset(this.shared.key);
      this.adopt(state);
    }
  }

  /** The state to save; pass it back as `initialState`. */
  toJSON(): CircuitBreakerSnapshot {
    const now = this.clock.now();
    switch (this.refresh(now)) {
      case 'closed':
        return { state: 'closed', openedAt: 0, reopenings: 0 };
      case 'isolated':
        return { state: 'open', openedAt: now, reopenings: this.reopenings };
      default:
        return { state: 'open', openedAt: this.openedAt, reopenings: this.reopenings };
    }
  }

  /** Runs `fn` under the breaker; `signal` aborts the call and is passed on as `context.signal`. */
  override execute<T>(fn: Work<T>, signal?: AbortSignal): Promise<T> {
    // The hot path (closed, untimed, local, no caller signal) goes straight to the shared closed run.
    if (
      signal === undefined &&
      this.current === 'closed' &&
      this.slowCallMs === undefined &&
      this.shared === undefined
    ) {
      return this.runClosed(fn, Scope.root(undefined), NO_CHAIN, 0) as Promise<T>;
    }
    return this[RUN](fn, Scope.root(signal), NO_CHAIN, 0) as Promise<T>;
  }

  /**
   * A call on a closed local circuit that nothing can abort and nobody times: observe the work's
   * own promise with the handlers of the current generation and hand that same promise back.
   */
  private runClosed(
    fn: Work<unknown>,
    scope: Scope,
    chain: readonly Link[],
    index: number,
  ): Promise<unknown> {
    const generation = this.generation;
    let promise: Promise<unknown>;
    try {
      const result = index === chain.length ? fn(scope) : runNext(fn, scope, chain, index);
      promise = result instanceof Promise ? result : Promise.resolve(result);
    } catch (error) {
      this.settle(generation, false, 0, true, error, scope);
      return Promise.reject(error);
    }
    let handlers = this.handlers;
    if (handlers.generation !== generation) handlers = this.makeHandlers(generation);
    // Our reaction, registered first, runs before the caller's await resumes; the caller's await
    // on this same promise costs no extra microtask.
    void promise.then(handlers.ok, handlers.fail);
    return promise;
  }

  /** @internal */
  [RUN](fn: Work<unknown>, scope: Scope, chain: readonly Link[], index: number): Promise<unknown> {
    if (this.shared !== undefined) return this.runShared(fn, scope, chain, index, this.shared);
    if (this.current === 'closed' && this.slowCallMs === undefined && !scope.abortable) {
      return this.runClosed(fn, scope, chain, index);
    }
    let probe = false;
    if (this.current !== 'closed') {
      const now = this.clock.now();
      const state = this.refresh(now);
      if (state === 'half-open' && this.probes < this.halfOpenMaxProbes) {
        probe = true;
      } else if (state !== 'closed') {
        return Promise.reject(this.rejection(state, now));
      }
    }
    if (scope.isAborted) return Promise.reject(scope.abortReason);
    if (probe) this.probes++;
    const generation = this.generation;
    const start = this.slowCallMs === undefined ? 0 : this.clock.now();
    let promise: Promise<unknown>;
    try {
      const result = runNext(fn, scope, chain, index);
      promise = result instanceof Promise ? result : Promise.resolve(result);
    } catch (error) {
      this.settle(generation, probe, start, true, error, scope);
      return Promise.reject(error);
    }
    // Observe the work's own promise and hand that same promise back: the caller's await then
    // costs no extra microtask, and our reaction, registered first, runs before the caller resumes.
    void promise.then(
      (value: unknown) => this.settle(generation, probe, start, false, value, scope),
      (error: unknown) => this.settle(generation, probe, start, true, error, scope),
    );
    return promise;
  }

  /** One pair of handlers per generation for closed calls, instead of two closures per call. */
  private makeHandlers(generation: number): Handlers {
    this.handlers = {
      generation,
      ok: (value: unknown) => {
        if (!this.plain || generation !== this.generation) {
          this.settle(generation, false, 0, false, value, UNSIGNALLED);
          return;
        }
        // Same generation, so still closed: count the success, then let the strategy decide
        // (a window reaching its minimum can open on a success).
        this.successes++;
        if (this.successEmitter.active) this.successEmitter.emit();
        if (this.strategy.record(false, false, 0)) this.transition('open', this.clock.now());
      },
      fail: (error: unknown) => this.settle(generation, false, 0, true, error, UNSIGNALLED),
    };
    return this.handlers;
  }

  /**
   * Counts a finished call: returns IGNORED, or FAILURE/SLOW flags; sets `settledAt` when timed.
   */
  private classify(
    generation: number,
    start: number,
    failed: boolean,
    outcome: unknown,
    scope: Scope,
  ): number {
    // Results of calls that started before the last transition say nothing about the new state.
    if (generation !== this.generation || (failed && scope.callerAborted)) {
      this.ignored++;
      return IGNORED;
    }
    const predicate = failed ? this.isFailure : this.isFailureResult;
    let failure = failed;
    if (predicate !== undefined) {
      try {
        failure = predicate(outcome);
      } catch {
        failure = true;
      }
    }
    let flags = failure ? FAILURE : 0;
    if (this.timed) {
      const end = this.clock.now();
      this.settledAt = end;
      if (this.slowCallMs !== undefined && end - start >= this.slowCallMs) {
        flags |= SLOW;
        this.slowCalls++;
      }
    }
    if (failure) {
      this.failures++;
      if (this.failureEmitter.active) {
        this.failureEmitter.emit(
          failed ? { error: outcome, result: undefined } : { error: undefined, result: outcome },
        );
      }
    } else {
      this.successes++;
      if (this.successEmitter.active) this.successEmitter.emit();
    }
    return flags;
  }

  private settle(
    generation: number,
    probe: boolean,
    start: number,
    failed: boolean,
    outcome: unknown,
    scope: Scope,
  ): void {
    if (probe && generation === this.generation) this.probes--;
    const flags = this.classify(generation, start, failed, outcome, scope);
    if (flags === IGNORED) return;
    if (this.current === 'closed') {
      if (this.strategy.record((flags & FAILURE) !== 0, (flags & SLOW) !== 0, this.settledAt)) {
        this.transition('open', this.timed ? this.settledAt : this.clock.now());
      }
    } else if (this.current === 'half-open') {
      if (flags !== 0) this.transition('open', this.timed ? this.settledAt : this.clock.now());
      else if (++this.probeSuccesses >= this.successesToClose) this.transition('closed', 0);
    }
  }

  private refresh(now: number): CircuitState {
    if (
      this.current === 'open' &&
      this.shared === undefined &&
      now >= this.openedAt + this.waitMs()
    ) {
      this.transition('half-open', now);
    }
    return this.current;
  }

  /** The current wait before probing: grows with each failed probe when a maximum allows it. */
  private waitMs(): number {
    if (this.reopenings === 0 || this.maxHalfOpenAfterMs === this.halfOpenAfterMs)
      return this.halfOpenAfterMs;
    return Math.min(
      this.maxHalfOpenAfterMs,
      this.halfOpenAfterMs * this.halfOpenBackoffFactor ** this.reopenings,
    );
  }

  private transition(to: CircuitState, now: number): void {
    const from = this.current;
    if (from === 'half-open' && to === 'open') this.reopenings++;
    else if (to === 'closed') this.reopenings = 0;
    this.current = to;
    this.generation++;
    this.probes = 0;
    this.probeSuccesses = 0;
    if (to === 'open') this.openedAt = now;
    if (to === 'closed') this.strategy.reset();
    if (from !== to && this.stateEmitter.active) this.stateEmitter.emit({ from, to });
  }

  private rejection(state: CircuitState, now: number): BrokenCircuitError {
    const error =
      state === 'isolated'
        ? new BrokenCircuitError(Infinity, true)
        : new BrokenCircuitError(
            state === 'open' ? Math.max(0, this.openedAt + this.waitMs() - now) : 0,
          );
    this.rejections++;
    if (this.rejectedEmitter.active) this.rejectedEmitter.emit(error);
    return error;
  }

  // ---- shared state --------------------------------------------------------------------------

  /**
   * Takes the store's state as ours when it moved on (another breaker or process changed it).
   * The store's times are on its own clock: `openedAt` comes over as time elapsed on that clock,
   * so this process measures the same wait however far its own clock is from the store's.
   */
  private adopt(state: SharedBreakerState): void {
    const shared = this.shared!;
    const now = this.clock.now();
    shared.syncedAt = now;
    if (state.generation === shared.generation) return;
    shared.generation = state.generation;
    if (this.isolations > 0) return;
    if (state.state === 'open' || state.state === 'half-open') {
      this.openedAt = now - (state.now - state.openedAt);
    }
    const to: CircuitState = state.state;
    if (to === 'open') {
      const openedAt = this.openedAt;
      this.transition('open', openedAt);
    } else {
      this.transition(to, now);
    }
  }

  private storeFailed(error: unknown): void {
    if (this.storeErrorEmitter.active) this.storeErrorEmitter.emit(error);
  }

  /**
   * Gives a claimed probe lease back without recording anything, without waiting for the answer
   * (the caller may have gone): otherwise every other prober waits until the lease expires.
   */
  private releaseLease(shared: SharedContext, lease: ProbeLease): void {
    let pending: Promise<SharedBreakerState>;
    try {
      pending = Promise.resolve(
        shared.store.releaseProbe(shared.key, lease.generation, lease.probeUntil),
      );
    } catch (error) {
      pending = Promise.reject(error);
    }
    pending.catch((error: unknown) => this.storeFailed(error));
  }

  /**
   * One store operation, bounded: rejects with a `TimeoutError` after `storeTimeoutMs`, and with the
   * abort reason as soon as the call's scope aborts (check `scope.isAborted` to tell them apart).
   * When it stops waiting on an operation that is still pending, it hands that operation to
   * `abandoned`, which decides what to do should it land after all.
   */
  private storeCall<T>(
    operation: () => Promise<T>,
    scope: Scope,
    shared: SharedContext,
    abandoned?: (pending: Promise<T>) => void,
  ): Promise<T> {
    if (scope.isAborted) return Promise.reject(scope.abortReason);
    let pending: Promise<T>;
    try {
      pending = Promise.resolve(operation());
    } catch (error) {
      return Promise.reject(error);
    }
    const clock = this.clock;
    const timeoutMs = shared.storeTimeoutMs;
    return new Promise<T>((resolve, reject) => {
      let done = false;
      let unsubscribe: (() => void) | undefined;
      const finish = (): boolean => {
        if (done) return false;
        done = true;
        clock.clearTimeout(timer);
        unsubscribe?.();
        return true;
      };
      const timer = clock.setTimeout(
        () => {
          if (!finish()) return;
          abandoned?.(pending);
          reject(new TimeoutError(timeoutMs));
        },
        timeoutMs,
        true,
      );
      if (scope.abortable) {
        unsubscribe = scope.subscribe((reason) => {
          if (!finish()) return;
          abandoned?.(pending);
          reject(reason);
        });
      }
      pending.then(
        (value) => {
          if (finish()) resolve(value);
        },
        (error: unknown) => {
          if (finish()) reject(error);
        },
      );
    });
  }

  private async runShared(
    fn: Work<unknown>,
    scope: Scope,
    chain: readonly Link[],
    index: number,
    shared: SharedContext,
  ): Promise<unknown> {
    const { store, key } = shared;
    let now = this.clock.now();
    if (this.isolations > 0) throw this.rejection('isolated', now);
    if (now - shared.syncedAt >= shared.syncIntervalMs) {
      try {
        this.adopt(await this.storeCall(() => store.load(key), scope, shared));
      } catch (error) {
        if (scope.isAborted) throw scope.abortReason;
        this.storeFailed(error);
        // Do not pay for an unreachable store on every call: try again after syncIntervalMs.
        shared.syncedAt = now;
      }
      now = this.clock.now();
    }
    let probe = false;
    // The store's probe lease this call holds, if any: given back if the probe records nothing.
    let lease: ProbeLease | undefined;
    if (this.current !== 'closed') {
      if (this.current === 'open' && now < this.openedAt + this.waitMs())
        throw this.rejection('open', now);
      let claim: ProbeClaim | undefined;
      try {
        claim = await this.storeCall(
          () => store.claimProbe(key, this.waitMs(), shared.probeLeaseMs),
          scope,
          shared,
          // We stopped waiting, but the claim may still land: a lease nobody runs a probe under
          // would keep every other prober out until it expired.
          (pending) => {
            pending.then(
              (late) => {
                if (late.claimed) this.releaseLease(shared, leaseOf(late.state));
              },
              () => undefined,
            );
          },
        );
      } catch (error) {
        if (scope.isAborted) throw scope.abortReason;
        this.storeFailed(error);
        now = this.clock.now();
        // The store is unreachable: fall back to this process's own half-open gate.
        if (this.current === 'open') this.transition('half-open', now);
        if (this.current !== 'half-open' || this.probes >= this.halfOpenMaxProbes)
          throw this.rejection(this.current, now);
        probe = true;
      }
      if (claim !== undefined) {
        this.adopt(claim.state);
        now = this.clock.now();
        if (claim.claimed) lease = leaseOf(claim.state);
        // Claimed, yet this breaker cannot use it (isolated meanwhile): hand it straight back.
        if (!claim.claimed || this.current !== 'half-open') {
          if (lease !== undefined) this.releaseLease(shared, lease);
          throw this.rejection(this.current, now);
        }
        probe = true;
      }
    }
    if (scope.isAborted) {
      if (lease !== undefined) this.releaseLease(shared, lease);
      throw scope.abortReason;
    }
    if (probe) this.probes++;
    const generation = this.generation;
    const start = this.slowCallMs === undefined ? 0 : this.clock.now();
    let value: unknown;
    let failed = false;
    let error: unknown;
    try {
      value = await runNext(fn, scope, chain, index);
    } catch (caught) {
      failed = true;
      error = caught;
    }
    if (probe && generation === this.generation) this.probes--;
    const flags = this.classify(generation, start, failed, failed ? error : value, scope);
    if (flags === IGNORED) {
      // The probe recorded nothing (its caller aborted, or the circuit moved on while it ran):
      // free the lease now rather than keep every other prober waiting until it expires.
      if (lease !== undefined) this.releaseLease(shared, lease);
    } else {
      const failure = (flags & FAILURE) !== 0;
      const slow = (flags & SLOW) !== 0;
      const end = this.clock.now();
      let write: (() => Promise<SharedBreakerState>) | undefined;
      // What this process decides on its own when the store cannot take the write.
      let decideLocally: (() => void) | undefined;
      const seen = shared.generation;
      if (this.current === 'half-open') {
        if (failure || slow) {
          write = () => store.open(key, seen);
          decideLocally = () => this.transition('open', end);
        } else {
          write = () => store.probeSucceeded(key, seen, this.successesToClose);
          decideLocally = () => {
            if (++this.probeSuccesses >= this.successesToClose) this.transition('closed', 0);
          };
        }
      } else if (this.current === 'closed' && this.strategy.record(failure, slow, end)) {
        write = () => store.open(key, seen);
      }
      if (write !== undefined) {
        const before = this.generation;
        let pending: Promise<SharedBreakerState>;
        try {
          pending = Promise.resolve(write());
        } catch (storeError) {
          pending = Promise.reject(storeError);
        }
        try {
          this.adopt(await this.storeCall(() => pending, scope, shared));
        } catch (storeError) {
          if (scope.isAborted) {
            // The caller stopped waiting: the write goes on, and the next sync reads its result.
            pending.catch((late: unknown) => this.storeFailed(late));
            if (failed) throw error;
            return value;
          }
          this.storeFailed(storeError);
          if (decideLocally !== undefined && this.generation === before) {
            decideLocally();
            // Take the store's state again once it answers: it is the shared truth.
            shared.generation = -1;
          }
        }
      }
    }
    if (failed) throw error;
    return value;
  }
}

/** The lease a successful claim holds: `releaseProbe` frees exactly this one. */
interface ProbeLease {
  generation: number;
  probeUntil: number;
}

function leaseOf(state: SharedBreakerState): ProbeLease {
  return { generation: state.generation, probeUntil: state.probeUntil };
}

/** Creates a circuit breaker; `circuitBreaker()` opens after 5 consecutive failures and probes after 30s. */
export function circuitBreaker(options: CircuitBreakerOptions = {}): CircuitBreakerPolicy {
  return new CircuitBreakerPolicy({ ...options });
}
