/** What a backend is asked to do with each request of one call. */
export type BackendMode = 'consume' | 'peek';

/** One key of one backend call. Times are whole microseconds so every comparison is exact. */
export interface BackendRequest {
  /** The limiter's namespace; never contains `{` or `}`. */
  readonly prefix: string;
  /** The limited subject, as the caller gave it (validated, never empty). */
  readonly key: string;
  /** What this call adds to the key's backlog: cost × emission interval, in µs (integer ≥ 1). */
  readonly incrementUs: number;
  /** The largest backlog the key may hold: burst × emission interval, in µs (integer ≥ incrementUs). */
  readonly toleranceUs: number;
}

/** A backend's answer for one call. */
export interface BackendDecision {
  /** True when every request had room for its increment; in `consume` mode all were then charged. */
  readonly allowed: boolean;
  /** Per request, in order: the key's backlog before this call, in µs (0 for an idle or unknown key). */
  readonly backlogUs: readonly number[];
  /** When set and the call was denied, the retry time to report instead of the computed one, in µs (fail-closed answers use it). */
  readonly retryAfterUs?: number;
}

/**
 * Where limiter state lives. `apply` must be atomic over all its requests: every request is
 * checked, and in `consume` mode either all are charged or none is. A denied call writes nothing.
 * Implementations may answer synchronously (the memory backend does) or with a promise.
 */
export interface RateLimitBackend {
  /** Checks, and in `consume` mode charges, every request at once. */
  apply(
    requests: readonly BackendRequest[],
    mode: BackendMode,
  ): BackendDecision | Promise<BackendDecision>;
  /** Forgets the state of every given key. */
  reset(keys: readonly Pick<BackendRequest, 'prefix' | 'key'>[]): void | Promise<void>;
}
