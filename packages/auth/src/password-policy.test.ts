import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { COMMON_PASSWORDS } from './common-passwords.js';
import { normalizeEmail } from './email.js';
import { checkPassword, isOversized, passwordPolicy } from './password-policy.js';

describe('password policy', () => {
  const policy = passwordPolicy();

  it('applies the NIST rules: length, blocklist, email, repetition, no composition rules', () => {
    expect(checkPassword(policy, 'lowercase only words')).toEqual([]);
    expect(checkPassword(policy, 'short')).toEqual(['too_short']);
    expect(checkPassword(policy, 'x'.repeat(129))).toEqual(['too_long', 'repetitive']);
    expect(checkPassword(policy, 'a'.repeat(64) + 'b'.repeat(10) + 'c')).toEqual([]);
    expect(checkPassword(policy, 'Password1234')).toEqual(['common']);
    expect(checkPassword(policy, 'my name is jonathan', 'Jonathan@example.test')).toEqual([
      'contains_email',
    ]);
    expect(checkPassword(policy, 'ababababababab')).toEqual(['repetitive']);
  });

  it('counts code points after NFKC, not UTF-16 units', () => {
    expect(checkPassword(policy, '😀'.repeat(6))).toContain('too_short');
    expect(checkPassword(policy, '😀😁😂🤣😃😄😅😆😉😊😋😎')).toEqual([]);
  });

  it('refuses inputs over maxBytes before doing anything else', () => {
    expect(isOversized('é'.repeat(513), 1024)).toBe(true);
    expect(isOversized('é'.repeat(512), 1024)).toBe(false);
    expect(checkPassword(policy, 'x'.repeat(10_000_000))).toEqual(['too_long']);
  });

  it('takes a custom floor, ceiling and blocklist, and refuses weak settings', () => {
    const custom = passwordPolicy({
      minLength: 8,
      maxLength: 64,
      blocklist: ['Postern Rocks'],
      rejectCommon: false,
    });
    expect(checkPassword(custom, 'password')).toEqual([]);
    expect(checkPassword(custom, 'postern rocks')).toEqual(['common']);
    expect(() => passwordPolicy({ minLength: 7 })).toThrow(RangeError);
    expect(() => passwordPolicy({ maxLength: 63 })).toThrow(RangeError);
    expect(() => passwordPolicy({ maxBytes: 100 })).toThrow(RangeError);
  });

  it('ships only entries the length floor does not already refuse', () => {
    for (const word of COMMON_PASSWORDS) expect([...word].length).toBeGreaterThanOrEqual(8);
  });

  it('never throws on arbitrary input', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), fc.emailAddress(), (password, email) => {
        expect(Array.isArray(checkPassword(policy, password, email))).toBe(true);
      }),
    );
  });
});

describe('normalizeEmail', () => {
  it('trims, lower-cases and NFKC-normalises', () => {
    expect(normalizeEmail('  Ｂｏｂ@Example.TEST ')).toBe('bob@example.test');
  });

  it('refuses malformed addresses', () => {
    for (const bad of [
      '',
      'no-at',
      '@example.test',
      'a@',
      'a@@b',
      'a b@c',
      `${'a'.repeat(65)}@b.c`,
      `a@${'b'.repeat(260)}`,
      'a\u0000@b.c',
      null,
      5,
    ]) {
      expect(() => normalizeEmail(bad)).toThrow(/email/);
    }
  });
});
