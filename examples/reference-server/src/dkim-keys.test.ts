import { describe, expect, it } from 'vitest';
import { createDkimKeySelector } from './dkim-keys.js';

function context(domain: string) {
  return { domain, aliases: [`a@${domain}`], messageId: 'm' };
}

describe('createDkimKeySelector: the alias domain key from PostgreSQL, cached', () => {
  it('returns the domain key signing as that domain, and null for a domain with none', async () => {
    const selector = createDkimKeySelector({
      lookup: (domain) =>
        Promise.resolve(
          domain === 'custom.test' ? { selector: 'postern', privateKeyPem: 'PEM' } : null,
        ),
    });
    expect(await selector.select(context('Custom.Test'))).toEqual({
      selector: 'postern',
      privateKey: 'PEM',
      domain: 'custom.test',
    });
    expect(await selector.select(context('other.test'))).toBeNull();
  });

  it('asks PostgreSQL once per domain per ttl, shares concurrent misses, and asks again after expiry or invalidate', async () => {
    let clock = 1_000;
    const asked: string[] = [];
    const selector = createDkimKeySelector({
      lookup: (domain) => {
        asked.push(domain);
        return Promise.resolve({ selector: 's', privateKeyPem: `PEM-${asked.length}` });
      },
      ttlMs: 100,
      now: () => clock,
    });
    const [a, b] = await Promise.all([
      selector.select(context('x.test')),
      selector.select(context('x.test')),
    ]);
    expect(a).toEqual(b);
    expect(asked).toEqual(['x.test']);
    clock += 99;
    await selector.select(context('x.test'));
    expect(asked).toHaveLength(1);
    clock += 2;
    expect(await selector.select(context('x.test'))).toMatchObject({ privateKey: 'PEM-2' });
    selector.invalidate('X.test');
    expect(await selector.select(context('x.test'))).toMatchObject({ privateKey: 'PEM-3' });
    expect(asked).toHaveLength(3);
  });

  it('does not cache a failed lookup, so the retry of the sender asks again', async () => {
    let fail = true;
    const selector = createDkimKeySelector({
      lookup: () =>
        fail
          ? Promise.reject(new Error('db down'))
          : Promise.resolve({ selector: 's', privateKeyPem: 'P' }),
    });
    await expect(selector.select(context('y.test'))).rejects.toThrow('db down');
    expect(selector.size()).toBe(0);
    fail = false;
    expect(await selector.select(context('y.test'))).toMatchObject({ privateKey: 'P' });
  });

  it('keeps at most maxEntries domains, and queries every time with ttl 0', async () => {
    let calls = 0;
    const lookup = () => {
      calls += 1;
      return Promise.resolve(null);
    };
    const bounded = createDkimKeySelector({ lookup, maxEntries: 2 });
    for (const domain of ['a.test', 'b.test', 'c.test']) await bounded.select(context(domain));
    expect(bounded.size()).toBe(2);
    const uncached = createDkimKeySelector({ lookup, ttlMs: 0 });
    calls = 0;
    await uncached.select(context('a.test'));
    await uncached.select(context('a.test'));
    expect(calls).toBe(2);
    expect(uncached.size()).toBe(0);
  });
});
