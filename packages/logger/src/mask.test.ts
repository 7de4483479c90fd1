import { describe, expect, it } from 'vitest';
import { maskEmail } from './mask.js';

describe('maskEmail', () => {
  it.each([
    ['alice@example.com', 'a***@example.com'],
    ['a@example.com', 'a***@example.com'],
    ['  bob.smith+tag@mail.example.org ', 'b***@mail.example.org'],
    ['"weird@local"@example.com', '***@example.com'],
    ['😀user@example.com', '😀***@example.com'],
    ['Élodie@exemple.fr', 'É***@exemple.fr'],
  ])('masks %s as %s', (input, expected) => {
    expect(maskEmail(input)).toBe(expected);
  });

  it('hides the length of the local part', () => {
    expect(maskEmail('averyveryverylonglocalpart@x.io')).toBe('a***@x.io');
    expect(maskEmail('ab@x.io')).toBe('a***@x.io');
  });

  it.each(['', 'no-at-sign', '@example.com', 'alice@', 'alice@exa mple.com', '   '])(
    'never returns %j unmasked',
    (input) => {
      expect(maskEmail(input)).toBe('***');
    },
  );

  it('returns *** for values that are not strings', () => {
    expect(maskEmail(undefined as unknown as string)).toBe('***');
    expect(maskEmail({ toString: () => 'alice@example.com' } as unknown as string)).toBe('***');
  });
});
