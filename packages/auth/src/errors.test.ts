import { describe, expect, it } from 'vitest';
import { AuthError } from './errors.js';

describe('AuthError', () => {
  it('carries a stable code and structured fields', () => {
    const cause = new Error('inner');
    const error = new AuthError('ACCOUNT_LOCKED', 'locked', { retryAfterMs: 1_000, cause });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('AuthError');
    expect(error.code).toBe('ACCOUNT_LOCKED');
    expect(error.retryAfterMs).toBe(1_000);
    expect(error.cause).toBe(cause);
    expect(error.toJSON()).toEqual({
      name: 'AuthError',
      code: 'ACCOUNT_LOCKED',
      message: 'locked',
      retryAfterMs: 1_000,
    });
    const weak = new AuthError('WEAK_PASSWORD', 'weak', { reasons: ['common'], field: 'password' });
    expect(weak.toJSON()).toEqual({
      name: 'AuthError',
      code: 'WEAK_PASSWORD',
      message: 'weak',
      reasons: ['common'],
      field: 'password',
    });
    expect(Object.isFrozen(weak.reasons)).toBe(true);
  });

  it('recognises errors from another copy of the package by marker, not by class', () => {
    const foreign = Object.assign(new Error('x'), {
      [Symbol.for('postern.error')]: true,
      package: '@postern/auth',
      code: 'TOKEN_INVALID',
    });
    expect(AuthError.isInstance(foreign)).toBe(true);
    expect(AuthError.isInstance(new AuthError('TOKEN_INVALID', 'x'))).toBe(true);
    const otherPackage = Object.assign(new Error('x'), {
      [Symbol.for('postern.error')]: true,
      package: '@postern/config',
      code: 'X',
    });
    expect(AuthError.isInstance(otherPackage)).toBe(false);
    expect(AuthError.isInstance(new Error('x'))).toBe(false);
    expect(AuthError.isInstance(null)).toBe(false);
    expect(AuthError.isInstance('TOKEN_INVALID')).toBe(false);
  });
});
