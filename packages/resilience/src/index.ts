// The public surface of @postern/resilience: every export is named here.
export type {
  BreakerStateStore,
  Clock,
  ProbeClaim,
  SharedBreakerState,
  TimerHandle,
} from './ports.js';
export { systemClock } from './clock.js';
export type {
  BulkheadRejectReason,
  ResilienceErrorCode,
  ResilienceErrorLike,
  RetryStopReason,
} from './errors.js';
export {
  BrokenCircuitError,
  BulkheadRejectedError,
  InvalidOptionError,
  ResilienceError,
  RetryExhaustedError,
  TimeoutError,
} from './errors.js';
export type { Disposable, Event } from './events.js';
export type { ExecuteContext } from './scope.js';
export type { Policy, PolicyOf, Work } from './policy.js';
export type { TimeoutOptions, TimeoutStrategy } from './timeout.js';
export { timeout, TimeoutPolicy } from './timeout.js';
export type { Jitter, RetryBudgetOptions, RetryEvent, RetryOptions } from './retry.js';
export { retry, RetryPolicy } from './retry.js';
export type {
  BreakerStrategyOptions,
  ConsecutiveStrategyOptions,
  CountWindowStrategyOptions,
  RateStrategyOptions,
  TimeWindowStrategyOptions,
} from './breaker-strategy.js';
export type {
  CircuitBreakerOptions,
  CircuitBreakerSnapshot,
  CircuitBreakerStats,
  CircuitState,
  FailureEvent,
  SharedStateOptions,
  StateChange,
} from './circuit-breaker.js';
export { circuitBreaker, CircuitBreakerPolicy } from './circuit-breaker.js';
export type { MemoryBreakerStoreOptions } from './breaker-store.js';
export { MemoryBreakerStore } from './breaker-store.js';
export type { BulkheadOptions } from './bulkhead.js';
export { bulkhead, BulkheadPolicy } from './bulkhead.js';
export type { FallbackFunction, FallbackOptions } from './fallback.js';
export { fallback, FallbackPolicy } from './fallback.js';
export type { ExtraResultOf, WrappablePolicy } from './wrap.js';
export { wrap, WrappedPolicy } from './wrap.js';
