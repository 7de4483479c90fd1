import { describe, expect, it } from 'vitest';
import { staticResolver } from './resolver.js';

const context = { sender: 's@origin.test', remoteAddress: '127.0.0.1', sessionId: 'x' };

describe('staticResolver', () => {
  const resolve = staticResolver({
    'Alice@fwd.test': 'alice@dest.test',
    'team@fwd.test': ['a@dest.test', 'b@dest.test'],
    'off@fwd.test': { destinations: [], disabled: 'reject', reason: 'gone' },
    '*@catch.test': 'all@dest.test',
  });

  it('matches exact aliases case-insensitively', async () => {
    expect(await resolve('ALICE@FWD.TEST', context)).toEqual({ destinations: ['alice@dest.test'] });
    expect(await resolve('team@fwd.test', context)).toEqual({
      destinations: ['a@dest.test', 'b@dest.test'],
    });
  });

  it('keeps the +tag on every destination', async () => {
    expect(await resolve('team+lists@fwd.test', context)).toEqual({
      destinations: ['a+lists@dest.test', 'b+lists@dest.test'],
    });
  });

  it('falls back to the catch-all, and returns null for unknown addresses', async () => {
    expect(await resolve('x@catch.test', context)).toEqual({ destinations: ['all@dest.test'] });
    expect(await resolve('x@fwd.test', context)).toBeNull();
    expect(await resolve('nope+tag@fwd.test', context)).toBeNull();
    expect(await resolve('not an address', context)).toBeNull();
  });

  it('passes disabled entries through, and can turn sub-addressing off', async () => {
    expect(await resolve('off@fwd.test', context)).toEqual({
      destinations: [],
      disabled: 'reject',
      reason: 'gone',
    });
    const strict = staticResolver({ 'a@fwd.test': 'x@dest.test' }, { separator: '' });
    expect(await strict('a+tag@fwd.test', context)).toBeNull();
  });

  it('refuses a disabled action it does not know, naming the alias', () => {
    const make = (): unknown =>
      staticResolver({
        'x@fwd.test': { destinations: ['a@dest.test'], disabled: 'block' as never },
      });
    expect(make).toThrow(/x@fwd\.test has disabled: "block"/);
    expect(make).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS' }));
  });

  it('matches IDN domains whether the map or the address uses the A-label or Unicode', async () => {
    const resolve = staticResolver({
      'info@xn--mnchen-3ya.test': 'a@dest.test',
      '*@k\u00f6ln.test': 'b@dest.test',
    });
    const context = { sender: '', remoteAddress: '127.0.0.1', sessionId: 's' };
    expect(await resolve('info@m\u00fcnchen.test', context)).toEqual({
      destinations: ['a@dest.test'],
    });
    expect(await resolve('info@xn--mnchen-3ya.test', context)).toEqual({
      destinations: ['a@dest.test'],
    });
    expect(await resolve('any@xn--kln-sna.test', context)).toEqual({
      destinations: ['b@dest.test'],
    });
    expect(await resolve('other@m\u00fcnchen.test', context)).toBeNull();
  });
});
