import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createAliasResolver,
  keepCachesCoherent,
  subscribeToChanges,
} from '../src/alias-resolver.js';
import type { AliasRoute } from '../src/aliases.js';
import { createDkimKeySelector } from '../src/dkim-keys.js';
import { REDIS_URL } from './support/redis.js';

const route = (enabled: boolean): AliasRoute => ({
  id: 'a1',
  userId: 'u1',
  address: 'shop@alias.test',
  enabled,
  destinations: ['me@example.org'],
  domain: 'alias.test',
});

const clients: Redis[] = [];
afterAll(() => {
  for (const client of clients) client.disconnect();
});

describe('alias cache: invalidation racing a lookup', () => {
  it('does not cache the result of a lookup that started before an invalidation', async () => {
    let current = route(true);
    let release: (() => void) | undefined;
    let calls = 0;
    const resolver = createAliasResolver({
      findRoute: async () => {
        calls += 1;
        const seen = current;
        if (calls === 1) await new Promise<void>((resolve) => (release = resolve));
        return seen;
      },
      ttlMs: 60_000,
    });
    // The lookup reads the enabled row, then the alias is disabled and invalidated before it returns.
    const first = resolver.route('shop@alias.test');
    await new Promise((resolve) => setImmediate(resolve));
    current = route(false);
    resolver.invalidate('shop@alias.test');
    release?.();
    expect((await first)?.enabled).toBe(true);
    // The next lookup must see the disabled alias, not the stale result cached after the invalidation.
    expect((await resolver.route('shop@alias.test'))?.enabled).toBe(false);
  });
});

describe('caches across a lost Redis subscription', () => {
  it('forgets what it cached when the subscriber connection drops, so a change published meanwhile is not missed', async () => {
    const channel = `test:rs:cache:${randomBytes(4).toString('hex')}:alias-changed`;
    // Reconnects after 300 ms: long enough for the publish below to land while it is away.
    const subscriber = new Redis(REDIS_URL, { retryStrategy: () => 300 });
    const publisher = new Redis(REDIS_URL);
    const admin = new Redis(REDIS_URL);
    clients.push(subscriber, publisher, admin);
    let current = route(true);
    let keyVersion = 1;
    const resolver = createAliasResolver({
      findRoute: () => Promise.resolve(current),
      ttlMs: 60_000,
    });
    const dkim = createDkimKeySelector({
      lookup: () => Promise.resolve({ selector: `k${keyVersion}`, privateKeyPem: 'pem' }),
      ttlMs: 60_000,
    });
    const id = String(await subscriber.client('ID'));
    await subscribeToChanges(subscriber, channel, (address) => resolver.invalidate(address));
    keepCachesCoherent(subscriber, [channel], [resolver, dkim]);
    const context = { domain: 'custom.test' } as Parameters<typeof dkim.select>[0];
    expect((await resolver.route('shop@alias.test'))?.enabled).toBe(true);
    expect((await dkim.select(context))?.selector).toBe('k1');

    const closed = new Promise<void>((resolve) => subscriber.once('close', () => resolve()));
    const resynced = new Promise<void>((resolve) => subscriber.once('ready', () => resolve()));
    await admin.client('KILL', 'ID', id);
    await closed;
    // Disabled (and a new key) while the subscriber is away: this message is lost.
    current = route(false);
    keyVersion = 2;
    await publisher.publish(channel, 'shop@alias.test');
    expect((await resolver.route('shop@alias.test'))?.enabled).toBe(false);
    expect((await dkim.select(context))?.selector).toBe('k2');
    await resynced;
    // Back and subscribed again: a later change is seen too.
    current = route(true);
    await publisher.publish(channel, 'shop@alias.test');
    await new Promise<void>((resolve) => {
      const poll = (): void => {
        void resolver.route('shop@alias.test').then((seen) => {
          if (seen?.enabled === true) resolve();
          else setTimeout(poll, 20);
        });
      };
      poll();
    });
  }, 20_000);
});
