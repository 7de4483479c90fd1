import { describe, expect, it } from 'vitest';
import { createAliasResolver, toRecipient } from './alias-resolver.js';
import type { AliasRoute } from './aliases.js';

const route = (enabled: boolean): AliasRoute => ({
  id: 'a1',
  userId: 'u1',
  address: 'shop@alias.test',
  enabled,
  destinations: ['me@example.org'],
  domain: 'alias.test',
});
const context = { sender: 's@example.org', remoteAddress: '127.0.0.1', sessionId: 's1' };

describe('createAliasResolver', () => {
  it('caches lookups for the TTL, hits and misses alike, and drops an address on invalidate', async () => {
    let now = 0;
    const lookups: string[] = [];
    let current: AliasRoute | null = route(true);
    const resolver = createAliasResolver({
      findRoute: (address) => (
        lookups.push(address),
        Promise.resolve(address === 'shop@alias.test' ? current : null)
      ),
      ttlMs: 1_000,
      now: () => now,
    });
    expect(await resolver.resolve('Shop+news@Alias.test', context)).toEqual({
      destinations: ['me@example.org'],
    });
    expect(await resolver.resolve('shop@alias.test', context)).toEqual({
      destinations: ['me@example.org'],
    });
    expect(await resolver.resolve('nobody@alias.test', context)).toBeNull();
    expect(await resolver.resolve('nobody@alias.test', context)).toBeNull();
    expect(lookups).toEqual(['shop@alias.test', 'nobody@alias.test']);
    current = route(false);
    resolver.invalidate('SHOP@alias.test');
    expect(await resolver.resolve('shop@alias.test', context)).toMatchObject({
      disabled: 'reject',
    });
    now = 2_000;
    await resolver.resolve('nobody@alias.test', context);
    expect(lookups).toHaveLength(4);
    expect(resolver.size()).toBe(2);
  });

  it('drops every cached address of a domain on invalidateDomain, and only those', async () => {
    const lookups: string[] = [];
    const resolver = createAliasResolver({
      findRoute: (address) => (lookups.push(address), Promise.resolve(null)),
      ttlMs: 1_000,
      now: () => 0,
    });
    for (const address of ['a@custom.test', 'b@custom.test', 'a@other.test', 'a@sub.custom.test'])
      await resolver.route(address);
    resolver.invalidateDomain('Custom.Test');
    expect(resolver.size()).toBe(2);
    for (const address of ['a@custom.test', 'a@other.test', 'a@sub.custom.test'])
      await resolver.route(address);
    expect(lookups.slice(4)).toEqual(['a@custom.test']);
  });

  it('never caches with a TTL of 0, and keeps at most maxEntries', async () => {
    let calls = 0;
    const uncached = createAliasResolver({
      findRoute: () => (calls++, Promise.resolve(null)),
      ttlMs: 0,
    });
    await uncached.resolve('a@x.test', context);
    await uncached.resolve('a@x.test', context);
    expect(calls).toBe(2);
    expect(uncached.size()).toBe(0);
    const small = createAliasResolver({ findRoute: () => Promise.resolve(null), maxEntries: 2 });
    for (const address of ['a@x.test', 'b@x.test', 'c@x.test'])
      await small.resolve(address, context);
    expect(small.size()).toBe(2);
  });

  it('keeps a plus sign at the start of a local part and without a separator', async () => {
    const seen: string[] = [];
    const resolver = createAliasResolver({
      findRoute: (address) => (seen.push(address), Promise.resolve(null)),
      separator: '',
    });
    await resolver.route('a+b@x.test');
    const plus = createAliasResolver({
      findRoute: (address) => (seen.push(address), Promise.resolve(null)),
    });
    await plus.route('+b@x.test');
    await plus.route('no-at-sign');
    expect(seen).toEqual(['a+b@x.test', '+b@x.test', 'no-at-sign']);
  });

  it('maps routes to recipients', () => {
    expect(toRecipient(null)).toBeNull();
    expect(toRecipient(route(false))).toEqual({
      destinations: ['me@example.org'],
      disabled: 'reject',
      reason: 'this alias is disabled',
    });
  });
});
