import type {
  CombinedRateLimitResult,
  CombinedRateLimiter,
  RateLimitResult,
  RateLimiter,
} from './limiter.js';

/** Seconds a client should wait before retrying, for a `Retry-After` header: whole, rounded up, ≥ 1 when denied. */
export function retryAfterSeconds(result: RateLimitResult): number {
  return result.allowed ? 0 : Math.max(1, Math.ceil(result.retryAfterMs / 1000));
}

/** HTTP response headers for one limiter or a combination, by name. */
export interface RateLimitHeaders {
  /** Quota policies, e.g. `"login";q=10;w=60` (draft-ietf-httpapi-ratelimit-headers). */
  'RateLimit-Policy': string;
  /** Current state per policy, e.g. `"login";r=3;t=42`. */
  RateLimit: string;
  /** Seconds to wait; present only when the call was denied. */
  'Retry-After'?: string;
}

// Structured Field Integers have at most 15 digits (RFC 9651).
const MAX_INTEGER = 999_999_999_999_999;

function item(name: string, parameters: string): string {
  return `"${name}";${parameters}`;
}

/** A non-negative whole number as a Structured Field Integer, clamped to its range. */
function integer(value: number): string {
  return String(Math.min(MAX_INTEGER, Math.max(0, value)));
}

/**
 * The policy's quota `q` per window `w` (whole seconds), at the limiter's rate: the window is
 * the period rounded up, or the time of one call when that is longer (a limit below one per window).
 */
function policy(limit: number, periodMs: number): string {
  const windowSeconds = Math.max(1, Math.ceil(periodMs / 1000));
  const quota = Math.floor((limit * windowSeconds * 1000) / periodMs);
  if (quota >= 1) return `q=${integer(quota)};w=${integer(windowSeconds)}`;
  return `q=1;w=${integer(Math.ceil(periodMs / limit / 1000))}`;
}

/**
 * The IETF `RateLimit-Policy` and `RateLimit` headers (draft-ietf-httpapi-ratelimit-headers,
 * revision 08 and later) and, when denied, `Retry-After`, from the values `consume` returned.
 */
export function rateLimitHeaders(
  limiter: RateLimiter | CombinedRateLimiter,
  result: RateLimitResult | CombinedRateLimitResult,
): RateLimitHeaders {
  const limiters = 'limiters' in limiter ? limiter.limiters : [limiter];
  const results = 'results' in result ? result.results : [result];
  const policies: string[] = [];
  const states: string[] = [];
  limiters.forEach((part, index) => {
    const partResult = results[index] ?? result;
    policies.push(item(part.prefix, policy(part.limit, part.periodMs)));
    states.push(
      item(
        part.prefix,
        `r=${integer(partResult.remaining)};t=${integer(Math.ceil(partResult.resetAfterMs / 1000))}`,
      ),
    );
  });
  const headers: RateLimitHeaders = {
    'RateLimit-Policy': policies.join(', '),
    RateLimit: states.join(', '),
  };
  if (!result.allowed) headers['Retry-After'] = String(retryAfterSeconds(result));
  return headers;
}
