import { Console } from 'node:console';
import { Writable } from 'node:stream';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import {
  assessSecret,
  DEFAULT_POLICY,
  entropyBits,
  KNOWN_DEFAULT_SECRETS,
  Secret,
  secret,
} from './secret.js';

const VALUE = 'k9$Tq2!vLr8#Wm4@Zx7&';

describe('Secret', () => {
  const hidden = new Secret(VALUE);

  it('reveals the value only through reveal()', () => {
    expect(hidden.reveal()).toBe(VALUE);
  });

  it('redacts itself everywhere a value is turned into text', () => {
    expect(String(hidden)).toBe('[redacted]');
    expect(hidden.toString()).toBe('[redacted]');
    // eslint-disable-next-line @typescript-eslint/restrict-template-expressions -- the point of the test
    expect(`${hidden}`).toBe('[redacted]');
    // eslint-disable-next-line @typescript-eslint/restrict-plus-operands
    expect('x' + hidden).toBe('x[redacted]');
    expect(JSON.stringify({ hidden })).toBe('{"hidden":"[redacted]"}');
    expect(inspect(hidden)).toBe('[redacted]');
    expect(inspect({ nested: { hidden } }, { showHidden: true, depth: 10 })).not.toContain(VALUE);
    expect(Object.keys(hidden)).toEqual([]);
    expect(JSON.stringify({ ...hidden })).not.toContain(VALUE);
    expect(JSON.stringify(structuredClone({ ...hidden }))).not.toContain(VALUE);
  });

  it('prints [redacted] through a Console', () => {
    let written = '';
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback): void {
        written += chunk.toString();
        callback();
      },
    });
    new Console(sink).log('token', hidden, { hidden });
    expect(written).toBe('token [redacted] { hidden: [redacted] }\n');
  });

  it('is frozen', () => {
    expect(Object.isFrozen(hidden)).toBe(true);
  });

  it('compares without revealing', () => {
    expect(hidden.equals(VALUE)).toBe(true);
    expect(hidden.equals(new Secret(VALUE))).toBe(true);
    expect(hidden.equals(`${VALUE}x`)).toBe(false);
    expect(hidden.equals(VALUE.slice(0, -1))).toBe(false);
    expect(hidden.equals('')).toBe(false);
    expect(new Secret('').equals('')).toBe(true);
  });

  it('is recognised across copies by a marker, and fakes cannot reveal', () => {
    expect(Secret.isInstance(hidden)).toBe(true);
    expect(Secret.isInstance({ reveal: () => 'x' })).toBe(false);
    expect(Secret.isInstance(null)).toBe(false);
    const fake = Object.create(Secret.prototype) as Secret;
    expect(() => fake.reveal()).toThrow(TypeError);
  });
});

describe('secret()', () => {
  it('parses a string into a Secret', () => {
    const result = secret().parse(VALUE);
    expect(Secret.isInstance(result)).toBe(true);
    expect(result.reveal()).toBe(VALUE);
  });

  it('uses its default when the input is missing', () => {
    expect(secret({ default: 'fallback-value' }).parse(undefined).reveal()).toBe('fallback-value');
    expect(() => secret().parse(undefined)).toThrow();
  });
});

describe('entropyBits', () => {
  it('is zero for empty and single-character strings', () => {
    expect(entropyBits('')).toBe(0);
    expect(entropyBits('aaaaaaaa')).toBe(0);
  });

  it('is length × log2(alphabet) for evenly spread characters', () => {
    expect(entropyBits('abcd')).toBeCloseTo(8);
    expect(entropyBits('0123456789abcdef')).toBeCloseTo(64);
  });
});

describe('assessSecret', () => {
  it('passes a long random value', () => {
    expect(assessSecret(VALUE, DEFAULT_POLICY, false)).toBeUndefined();
  });

  it.each([
    ['changeme'],
    ['CHANGEME'],
    ['Change-Me'],
    ['change_me'],
    ['minioadmin'],
    ['MinioAdmin'],
    ['password'],
    ['admin'],
    ['secret'],
    ['test'],
    ['default'],
    ['your-secret-key'],
    ['YOUR_SECRET_KEY'],
    ['supersecret'],
    ['123456'],
    ['keyboard cat'],
    ['please-change-me-before-deploying'],
    ['<your-secret-here>'],
    ['replace-me-with-a-real-key'],
  ])('refuses the known default %j', (value) => {
    expect(assessSecret(value, DEFAULT_POLICY, false)?.code).toBe('SECRET_KNOWN_DEFAULT');
  });

  it('lists at least 30 known defaults', () => {
    expect(KNOWN_DEFAULT_SECRETS.length).toBeGreaterThanOrEqual(30);
  });

  it('refuses one repeated character, however long', () => {
    expect(assessSecret('x'.repeat(64), DEFAULT_POLICY, false)?.code).toBe('SECRET_REPEATED');
  });

  it('refuses short values and names the floor, not the value', () => {
    const weakness = assessSecret('Ab3$efGh', DEFAULT_POLICY, false);
    expect(weakness).toEqual({
      code: 'SECRET_TOO_SHORT',
      message: 'is shorter than 16 characters',
    });
  });

  it('refuses long values with little entropy', () => {
    expect(assessSecret('abababababababababab', DEFAULT_POLICY, false)?.code).toBe(
      'SECRET_LOW_ENTROPY',
    );
  });

  it('honours a custom policy', () => {
    expect(assessSecret('Ab3$efGh', { minLength: 8, minEntropyBits: 20 }, false)).toBeUndefined();
  });

  it('refuses a value that came from a default before anything else', () => {
    expect(assessSecret(VALUE, DEFAULT_POLICY, true)?.code).toBe('SECRET_DEFAULT');
  });
});

describe('secret() in a zod object', () => {
  it('keeps the value out of zod output serialisation', () => {
    const parsed = z.object({ key: secret() }).parse({ key: VALUE });
    expect(JSON.stringify(parsed)).toBe('{"key":"[redacted]"}');
  });
});

describe('secrets outside ASCII', () => {
  it('counts characters, not UTF-16 units', () => {
    expect(entropyBits('éééé')).toBe(0);
    expect(entropyBits('aé')).toBeCloseTo(2);
    expect(entropyBits('😀😁')).toBeCloseTo(2);
    expect(assessSecret('😀'.repeat(20), DEFAULT_POLICY, false)?.code).toBe('SECRET_REPEATED');
    // 15 emoji are 30 UTF-16 units but only 15 characters: too short.
    expect(assessSecret('😀😁😂🤣😃😄😅😆😉😊😋😎😍😘🥰', DEFAULT_POLICY, false)?.code).toBe(
      'SECRET_TOO_SHORT',
    );
    expect(assessSecret('ä1ö2ü3ß4é5è6ê7ë8ï9î0', DEFAULT_POLICY, false)).toBeUndefined();
  });

  it('exposes policy and origin, never the value, to other copies of the package', () => {
    const made = secret({ minLength: 20, default: 'fallback-value-0000' }).parse(undefined);
    const check = (made as unknown as Record<symbol, () => unknown>)[
      Symbol.for('postern.config.secret.check')
    ]!;
    const details = check.call(made);
    expect(details).toEqual({ policy: { minLength: 20, minEntropyBits: 48 }, fromDefault: true });
    expect(JSON.stringify(details)).not.toContain('fallback-value-0000');
    expect(check.call(new Secret('x'))).toEqual({ policy: DEFAULT_POLICY, fromDefault: false });
  });
});
