import { describe, expect, it } from 'vitest';
import { maskEmail, parseAddress } from './address.js';
import { SmtpForwardError, isPosternError } from './errors.js';

describe('parseAddress', () => {
  it('splits at the last @ and lower-cases the domain', () => {
    expect(parseAddress('Al.ice+x@Example.COM')).toEqual({
      local: 'Al.ice+x',
      domain: 'example.com',
    });
  });

  it('refuses anything that could inject headers or is not a mailbox', () => {
    for (const bad of [
      '',
      'a',
      '@x.test',
      'a@',
      'a\r\nBcc: x@y@z.test',
      'a b@x.test',
      'a@x..test',
      'a@.x.test',
      'a@x_y.test',
      '<a>@x.test',
      `${'a'.repeat(300)}@x.test`,
    ]) {
      expect(parseAddress(bad)).toBeNull();
    }
  });
});

describe('maskEmail', () => {
  it('keeps the first character and the domain', () => {
    expect(maskEmail('alice@example.com')).toBe('a***@example.com');
    expect(maskEmail('alice')).toBe('a***');
    expect(maskEmail('')).toBe('');
  });
});

describe('SmtpForwardError', () => {
  it('carries a code and fields, and is recognised across copies by its marker', () => {
    const error = new SmtpForwardError('DELIVERY_FAILED', 'nope', {
      responseCode: 451,
      temporary: true,
      attempts: 3,
      retryAfterMs: 10,
      cause: new Error('x'),
    });
    expect(error.code).toBe('DELIVERY_FAILED');
    expect(error.attempts).toBe(3);
    expect(error.cause).toBeInstanceOf(Error);
    expect(SmtpForwardError.isInstance(error)).toBe(true);
    expect(isPosternError(error)).toBe(true);
    const copy = Object.assign(new Error('copy'), {
      [Symbol.for('postern.smtp-forward.error')]: true,
    });
    expect(SmtpForwardError.isInstance(copy)).toBe(true);
    expect(SmtpForwardError.isInstance(new Error('plain'))).toBe(false);
    expect(isPosternError(null)).toBe(false);
  });
});
