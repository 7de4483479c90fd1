import { describe, expect, it } from 'vitest';
import { chooseDkimKey, isDkimSelection } from './signing.js';
import type { DkimOptions, DkimSelectContext } from './signing.js';

const context: DkimSelectContext = {
  domain: 'two.test',
  aliases: ['bob@two.test'],
  messageId: 'm1',
};

describe('chooseDkimKey: one key, or a choice per alias domain', () => {
  it('keeps a single key as before, signing for its domain or the forwarder domain', async () => {
    expect(await chooseDkimKey({ selector: 's', privateKey: 'k' }, context, 'fwd.test')).toEqual({
      selector: 's',
      privateKey: 'k',
      domain: 'fwd.test',
    });
    expect(
      await chooseDkimKey(
        { selector: 's', privateKey: 'k', domain: 'own.test' },
        context,
        'fwd.test',
      ),
    ).toMatchObject({ domain: 'own.test' });
    expect(isDkimSelection({ selector: 's', privateKey: 'k' })).toBe(false);
    expect(isDkimSelection({ keys: [] })).toBe(true);
  });

  it('picks the listed key of the alias domain, case-insensitively, before asking select', async () => {
    const asked: string[] = [];
    const key = await chooseDkimKey(
      {
        keys: [
          { domain: 'one.test', selector: 'a', privateKey: 'k1' },
          { domain: 'TWO.test', selector: 'b', privateKey: 'k2' },
        ],
        select: (c) => {
          asked.push(c.domain);
          return null;
        },
      },
      context,
      'fwd.test',
    );
    expect(key).toMatchObject({ selector: 'b', privateKey: 'k2' });
    expect(asked).toEqual([]);
  });

  it('asks select for an unlisted domain and signs for that domain unless the key names another', async () => {
    const seen: DkimSelectContext[] = [];
    const select = (c: DkimSelectContext): Promise<DkimOptions | null> => {
      seen.push(c);
      return Promise.resolve(c.domain === 'two.test' ? { selector: 'db', privateKey: 'k3' } : null);
    };
    expect(
      await chooseDkimKey(
        { keys: [{ domain: 'one.test', selector: 'a', privateKey: 'k1' }], select },
        context,
        'fwd.test',
      ),
    ).toEqual({ selector: 'db', privateKey: 'k3', domain: 'two.test' });
    expect(seen[0]).toEqual(context);
    expect(
      await chooseDkimKey(
        { select: () => ({ selector: 'x', privateKey: 'k', domain: 'parent.test' }) },
        context,
        'fwd.test',
      ),
    ).toMatchObject({ domain: 'parent.test' });
  });

  it('falls back to the fallback key (forwarder domain), and otherwise leaves the message unsigned', async () => {
    expect(
      await chooseDkimKey(
        { select: () => null, fallback: { selector: 'f', privateKey: 'kf' } },
        context,
        'fwd.test',
      ),
    ).toEqual({ selector: 'f', privateKey: 'kf', domain: 'fwd.test' });
    expect(
      await chooseDkimKey(
        { keys: [{ domain: 'one.test', selector: 'a', privateKey: 'k1' }] },
        context,
        'fwd.test',
      ),
    ).toBeNull();
  });

  it('passes a failing select on to the caller (the forwarder answers 451)', async () => {
    await expect(
      chooseDkimKey({ select: () => Promise.reject(new Error('db down')) }, context, 'fwd.test'),
    ).rejects.toThrow('db down');
  });
});
