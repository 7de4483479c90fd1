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

function item(name: string, parameters: string): string {
  return `"${name}";${parameters}`;
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
    policies.push(
      item(
        part.prefix,
        `q=${Math.floor(part.limit)};w=${Math.max(1, Math.ceil(part.periodMs / 1000))}`,
      ),
    );
    states.push(
      item(part.prefix, `r=${partResult.remaining};t=${Math.ceil(partResult.resetAfterMs / 1000)}`),
    );
  });
  const headers: RateLimitHeaders = {
    'RateLimit-Policy': policies.join(', '),
    RateLimit: states.join(', '),
  };
  if (!result.allowed) headers['Retry-After'] = String(retryAfterSeconds(result));
  return headers;
}
