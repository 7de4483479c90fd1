import { describe, expect, it } from 'vitest';
import { mxMatches } from './transport.js';

describe('mxMatches (MTA-STS mx patterns)', () => {
  it('matches exact names and one-label wildcards, case-insensitively, ignoring a trailing dot', () => {
    expect(mxMatches('MX1.Example.com.', ['mx1.example.com'])).toBe(true);
    expect(mxMatches('a.mail.example.com', ['*.mail.example.com'])).toBe(true);
    expect(mxMatches('a.b.mail.example.com', ['*.mail.example.com'])).toBe(false);
    expect(mxMatches('mail.example.com', ['*.mail.example.com'])).toBe(false);
    expect(mxMatches('evil-example.com', ['*.example.com', 'example.com'])).toBe(false);
  });
});
