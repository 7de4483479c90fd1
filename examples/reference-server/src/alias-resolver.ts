import type { Redis } from 'ioredis';
import type { ResolvedRecipient, Resolver } from '@postern/smtp-forward';
import type { AliasRoute } from './aliases.js';
import type { AliasChangeNotifier, DomainChangeNotifier } from './ports.js';

/** Options of `createAliasResolver`. */
export interface AliasResolverOptions {
  /** Looks one address up in PostgreSQL. */
  findRoute: (address: string) => Promise<AliasRoute | null>;
  /** How long a looked-up route (or its absence) is reused, in ms; 0 disables the cache. Default: 30_000. */
  ttlMs?: number;
  /** Most addresses cached; the oldest is dropped first. Default: 10_000. */
  maxEntries?: number;
  /** Epoch-ms clock. Default: Date.now. */
  now?: () => number;
  /** Sub-addressing separator: `alias+tag@domain` resolves `alias@domain`. Default: '+'. */
  separator?: string;
}

/** A resolver with its cache, and the hook that drops one address from it. */
export interface AliasResolver {
  resolve: Resolver;
  /** The cached route of an address (sub-address tags removed), or null. */
  route(address: string): Promise<AliasRoute | null>;
  invalidate(address: string): void;
  /** Drops every cached address of one domain (after the domain was deleted). */
  invalidateDomain(domain: string): void;
  /** Entries in the cache now. */
  size(): number;
  /** Empties the cache and stops caching (nothing would tell this process of a change now). */
  suspend(): void;
  /** Empties the cache and caches again (the invalidation channel is back). */
  resume(): void;
}

/** A cache that can be told its invalidation channel went away (`suspend`) and came back (`resume`). */
export interface InvalidatedCache {
  suspend(): void;
  resume(): void;
}

function baseAddress(address: string, separator: string): string {
  const lower = address.toLowerCase();
  const at = lower.lastIndexOf('@');
  if (at < 0 || separator === '') return lower;
  const local = lower.slice(0, at);
  const cut = local.indexOf(separator);
  return cut > 0 ? `${local.slice(0, cut)}${lower.slice(at)}` : lower;
}

/**
 * What the forwarder is told about a route: null (unknown, 550 5.1.1), or destinations, refused
 * when disabled or when none is left to forward to (every one unverified).
 */
export function toRecipient(route: AliasRoute | null): ResolvedRecipient | null {
  if (route === null) return null;
  if (route.destinations.length === 0)
    return {
      destinations: [],
      disabled: 'reject',
      reason: 'this alias has no verified destination',
    };
  return route.enabled
    ? { destinations: route.destinations }
    : { destinations: route.destinations, disabled: 'reject', reason: 'this alias is disabled' };
}

/**
 * Resolves aliases from PostgreSQL through a short-lived cache. A disabled alias resolves to a
 * `reject`, so the SMTP process answers 550 at RCPT; an unknown one to null (550 5.1.1).
 */
export function createAliasResolver(options: AliasResolverOptions): AliasResolver {
  const ttlMs = options.ttlMs ?? 30_000;
  const maxEntries = options.maxEntries ?? 10_000;
  const now = options.now ?? Date.now;
  const separator = options.separator ?? '+';
  const cache = new Map<string, { route: AliasRoute | null; expiresAt: number }>();
  // Bumped by every invalidation: a lookup that started before one may have read the old row,
  // so its result is returned to its caller but never cached.
  let generation = 0;
  let live = true;

  const lookup = async (address: string): Promise<AliasRoute | null> => {
    const caching = ttlMs > 0 && live;
    if (caching) {
      const hit = cache.get(address);
      if (hit !== undefined && hit.expiresAt > now()) return hit.route;
    }
    const started = generation;
    const route = await options.findRoute(address);
    if (caching && live && started === generation) {
      cache.delete(address);
      cache.set(address, { route, expiresAt: now() + ttlMs });
      if (cache.size > maxEntries) {
        const oldest = cache.keys().next();
        if (oldest.done !== true) cache.delete(oldest.value);
      }
    }
    return route;
  };

  const resolve: Resolver = async (address) =>
    toRecipient(await lookup(baseAddress(address, separator)));

  return {
    resolve,
    route: (address) => lookup(baseAddress(address, separator)),
    invalidate: (address) => {
      generation += 1;
      cache.delete(address.toLowerCase());
    },
    invalidateDomain: (domain) => {
      generation += 1;
      const suffix = `@${domain.toLowerCase()}`;
      for (const address of [...cache.keys()]) if (address.endsWith(suffix)) cache.delete(address);
    },
    size: () => cache.size,
    suspend: () => {
      generation += 1;
      live = false;
      cache.clear();
    },
    resume: () => {
      generation += 1;
      live = true;
      cache.clear();
    },
  };
}

/**
 * Publishes alias (or domain) changes on Redis, so every SMTP process drops its cached entry at once.
 * The same class serves both channels: `alias-changed` carries addresses, `domain-changed` domain names.
 */
export class RedisAliasNotifier implements AliasChangeNotifier, DomainChangeNotifier {
  readonly #redis: Redis;
  readonly #channel: string;

  /** `channel`: the Redis channel changes are published on (the key prefix + `alias-changed`). */
  constructor(redis: Redis, channel: string) {
    this.#redis = redis;
    this.#channel = channel;
  }

  async changed(address: string): Promise<void> {
    await this.#redis.publish(this.#channel, address.toLowerCase());
  }
}

/** Used with no Redis (a first look): the SMTP process runs with its cache off instead. */
export const noopAliasNotifier: AliasChangeNotifier = { changed: () => Promise.resolve() };

/**
 * Subscribes `resolver` to alias changes on a dedicated connection (a subscribed ioredis client
 * cannot run other commands). Resolves once subscribed; returns the unsubscribe function.
 */
export function subscribeToAliasChanges(
  subscriber: Redis,
  channel: string,
  resolver: AliasResolver,
): Promise<() => Promise<void>> {
  return subscribeToChanges(subscriber, channel, (address) => resolver.invalidate(address));
}

/**
 * Keeps caches fed by pub/sub on `subscriber` honest across a lost connection: a message published
 * while the connection is down is never delivered, so each cache is emptied and bypassed from the
 * moment the connection closes until it is subscribed to `channels` again (ioredis resubscribes on
 * its own after `ready`; the extra SUBSCRIBE here resolves only once the server has it).
 */
export function keepCachesCoherent(
  subscriber: Redis,
  channels: readonly string[],
  caches: readonly InvalidatedCache[],
): void {
  const suspend = (): void => {
    for (const cache of caches) cache.suspend();
  };
  let attempt = 0;
  subscriber.on('close', () => {
    attempt += 1;
    suspend();
  });
  subscriber.on('ready', () => {
    const current = (attempt += 1);
    // After ioredis's own resubscription, which it sends right after emitting `ready`.
    setImmediate(() => {
      subscriber.subscribe(...channels).then(
        () => {
          if (current !== attempt) return;
          for (const cache of caches) cache.resume();
        },
        () => undefined,
      );
    });
  });
  if (subscriber.status !== 'ready') suspend();
}

/**
 * Calls `onChange` with each message published on `channel` (several channels may share one
 * subscriber connection). Resolves once subscribed; returns the unsubscribe function.
 */
export async function subscribeToChanges(
  subscriber: Redis,
  channel: string,
  onChange: (value: string) => void,
): Promise<() => Promise<void>> {
  subscriber.on('message', (from: string, value: string) => {
    if (from === channel) onChange(value);
  });
  await subscriber.subscribe(channel);
  return async () => {
    await subscriber.unsubscribe(channel);
  };
}
