// The public surface of @postern/rate-limit: every export is named here.
export { VERSION } from './version.js';
export { createRateLimiter, combine } from './limiter.js';
export type {
  CombinedRateLimitResult,
  CombinedRateLimiter,
  ConsumeOptions,
  RateLimitResult,
  RateLimiter,
  RateLimiterOptions,
} from './limiter.js';
export { MemoryBackend } from './memory-backend.js';
export type { MemoryBackendOptions } from './memory-backend.js';
export type { BackendDecision, BackendMode, BackendRequest, RateLimitBackend } from './backend.js';
export type { Clock } from './ports.js';
export { RateLimitError } from './errors.js';
export type { RateLimitErrorCode, RateLimitErrorFields } from './errors.js';
export { rateLimitHeaders, retryAfterSeconds } from './headers.js';
export type { RateLimitHeaders } from './headers.js';
