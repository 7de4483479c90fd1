import { describe, expect, it } from 'vitest';
import { randomToken, safeEqual, seal, sha256, unseal } from './crypto.js';

describe('token crypto', () => {
  it('makes 256-bit random tokens and stores only their hash', () => {
    const token = randomToken(32);
    expect(Buffer.from(token, 'base64url')).toHaveLength(32);
    expect(randomToken(32)).not.toBe(token);
    expect(sha256(token)).toHaveLength(43);
    expect(sha256(token)).not.toContain(token);
  });

  it('compares equal and unequal strings', () => {
    expect(safeEqual('abc', 'abc')).toBe(true);
    expect(safeEqual('abc', 'abd')).toBe(false);
    expect(safeEqual('abc', 'abcd')).toBe(false);
  });

  it('seals the successor so only the parent token opens it', () => {
    const box = seal('parent-secret', 'successor-token');
    expect(box).not.toContain('successor');
    expect(unseal('parent-secret', box)).toBe('successor-token');
    expect(unseal('another-secret', box)).toBeNull();
    expect(unseal('parent-secret', `${box.slice(0, -4)}AAAA`)).toBeNull();
    expect(unseal('parent-secret', 'short')).toBeNull();
  });
});
