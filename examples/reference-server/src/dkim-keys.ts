import type { DkimOptions, DkimSelectContext } from '@postern/smtp-forward';

/** Options of `createDkimKeySelector`. */
export interface DkimKeySelectorOptions {
  /** Reads a domain's signing key from PostgreSQL; null when the domain is unknown. */
  lookup: (domain: string) => Promise<{ selector: string; privateKeyPem: string } | null>;
  /** How long a looked-up key (or its absence) is reused, in ms; 0 disables the cache. Default: 30_000. */
  ttlMs?: number;
  /** Most domains cached; the oldest is dropped first. Default: 1_000. */
  maxEntries?: number;
  /** Epoch-ms clock. Default: Date.now. */
  now?: () => number;
}

/** The forwarder's per-message DKIM key choice, with its cache. */
export interface DkimKeySelector {
  /** Pass as `dkim.select` of the forwarder: the alias domain's key, signing as that domain. */
  select(context: DkimSelectContext): Promise<DkimOptions | null>;
  /** Drops one domain from the cache (after its key changed or it was deleted). */
  invalidate(domain: string): void;
  /** Domains in the cache now. */
  size(): number;
  /** Empties the cache and stops caching (nothing would tell this process of a change now). */
  suspend(): void;
  /** Empties the cache and caches again (the invalidation channel is back). */
  resume(): void;
}

/**
 * Looks up the DKIM key of each message's alias domain (a user's custom domain) in PostgreSQL
 * through a short-lived cache, like the alias routes: one query per domain per `ttlMs`, not per message.
 * Concurrent misses for one domain share one query.
 */
export function createDkimKeySelector(options: DkimKeySelectorOptions): DkimKeySelector {
  const ttlMs = options.ttlMs ?? 30_000;
  const maxEntries = options.maxEntries ?? 1_000;
  const now = options.now ?? Date.now;
  const cache = new Map<string, { key: Promise<DkimOptions | null>; expiresAt: number }>();
  let live = true;

  const load = async (domain: string): Promise<DkimOptions | null> => {
    const row = await options.lookup(domain);
    return row === null ? null : { selector: row.selector, privateKey: row.privateKeyPem, domain };
  };

  return {
    select(context) {
      const domain = context.domain.toLowerCase();
      if (ttlMs <= 0 || !live) return load(domain);
      const hit = cache.get(domain);
      if (hit !== undefined && hit.expiresAt > now()) return hit.key;
      const key = load(domain);
      cache.delete(domain);
      cache.set(domain, { key, expiresAt: now() + ttlMs });
      // A failed lookup is not cached: the sender gets 451 and the next attempt asks again.
      key.catch(() => {
        if (cache.get(domain)?.key === key) cache.delete(domain);
      });
      if (cache.size > maxEntries) {
        const oldest = cache.keys().next();
        if (oldest.done !== true) cache.delete(oldest.value);
      }
      return key;
    },
    invalidate(domain) {
      cache.delete(domain.toLowerCase());
    },
    size: () => cache.size,
    suspend() {
      live = false;
      cache.clear();
    },
    resume() {
      live = true;
      cache.clear();
    },
  };
}
