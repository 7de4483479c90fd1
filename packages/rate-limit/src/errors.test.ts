import { describe, expect, it } from 'vitest';
import { RateLimitError, rejectWith, toError } from './errors.js';

describe('RateLimitError', () => {
  it('carries a stable code, structured fields and its cause', () => {
    const cause = new Error('socket closed');
    const error = new RateLimitError('BACKEND_ERROR', 'Redis call failed', {
      cause,
      retryAfterMs: 5,
    });
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({
      name: 'RateLimitError',
      code: 'BACKEND_ERROR',
      retryAfterMs: 5,
      cause,
    });
    expect(error.option).toBeUndefined();
    expect(error.timeoutMs).toBeUndefined();
  });

  it('is recognised across copies of the package by its marker, not by its class', () => {
    const foreign = Object.assign(new Error('from another copy'), {
      [Symbol.for('postern.error')]: '@postern/rate-limit',
      code: 'BACKEND_TIMEOUT',
    });
    expect(RateLimitError.isInstance(foreign)).toBe(true);
    expect(
      RateLimitError.isInstance(
        Object.assign(new Error('x'), {
          [Symbol.for('postern.error')]: '@postern/auth',
          code: 'X',
        }),
      ),
    ).toBe(false);
    expect(RateLimitError.isInstance(new Error('plain'))).toBe(false);
    expect(RateLimitError.isInstance(null)).toBe(false);
    expect(RateLimitError.isInstance('BACKEND_TIMEOUT')).toBe(false);
  });

  it('turns anything thrown into an Error', async () => {
    expect(toError('text').message).toBe('text');
    const error = new Error('kept');
    expect(toError(error)).toBe(error);
    await expect(rejectWith(42)).rejects.toThrow('42');
  });
});
