import type { Transaction } from 'kysely';
import type { Database } from './db/schema.js';
/** The rate limiter port every @postern/rate-limit limiter satisfies. */
export interface RateLimiter {
  consume(
    key: string,
    options?: { cost?: number },
  ): Promise<{ allowed: boolean; retryAfterMs: number }>;
}

/** Who made an authenticated request. */
export interface Principal {
  userId: string;
  sessionId: string;
}

/** Tells every SMTP process that an alias changed, so cached routes are dropped. */
export interface AliasChangeNotifier {
  changed(address: string): Promise<void>;
}

/**
 * Tells every SMTP process that a custom domain was added or deleted (a re-added name has a new key), so its cached
 * DKIM key and the cached routes of its aliases are dropped.
 */
export interface DomainChangeNotifier {
  changed(domain: string): Promise<void>;
}

/** Decides whether a user may forward to some addresses; `AliasRepository` asks it on every change of destinations. */
export interface DestinationPolicy {
  /**
   * Throws `VALIDATION_FAILED` (field `destinations`) naming the first address the user may not use.
   * Given `transaction`, it checks inside it and keeps the destinations it relied on locked until
   * the transaction ends, so they cannot be deleted before the alias that uses them is written.
   */
  assertUsable(
    userId: string,
    addresses: readonly string[],
    transaction?: Transaction<Database>,
  ): Promise<void>;
}
