import { describe, expect, it } from 'vitest';
import {
  BrokenCircuitError,
  BulkheadRejectedError,
  InvalidOptionError,
  ResilienceError,
  RetryExhaustedError,
  TimeoutError,
} from './index.js';

/** What an error from a second copy of this package (another version in node_modules) looks like. */
function foreignCopy(code: string, fields: Record<string, unknown> = {}): Error {
  return Object.assign(new Error('from another copy'), {
    [Symbol.for('postern.error')]: true,
    [Symbol.for('postern.resilience.error')]: true,
    code,
    ...fields,
  });
}

describe('errors', () => {
  it('carry stable codes, names and structured fields', () => {
    const broken = new BrokenCircuitError(1_500);
    expect(broken).toMatchObject({
      code: 'BROKEN_CIRCUIT',
      name: 'BrokenCircuitError',
      retryAfterMs: 1_500,
      isolated: false,
    });
    expect(broken.message).toContain('1500ms');
    expect(new TimeoutError(10)).toMatchObject({
      code: 'TIMEOUT',
      name: 'TimeoutError',
      timeoutMs: 10,
    });
    expect(new BulkheadRejectedError(3, 4)).toMatchObject({
      code: 'BULKHEAD_REJECTED',
      active: 3,
      queued: 4,
    });
    const cause = new Error('last');
    expect(new RetryExhaustedError(3, cause, 'attempts')).toMatchObject({
      code: 'RETRY_EXHAUSTED',
      attempts: 3,
      lastError: cause,
      cause,
      reason: 'attempts',
    });
    expect(new InvalidOptionError('limit', 'must be >= 1', 'x').message).toBe(
      'Invalid option "limit": must be >= 1 (got "x")',
    );
    expect(new InvalidOptionError('limit', 'must be >= 1', {}).message).toContain('got object');
  });

  it('isInstance works across duplicate copies of the package and checks the code', () => {
    expect(ResilienceError.isInstance(foreignCopy('TIMEOUT'))).toBe(true);
    expect(TimeoutError.isInstance(foreignCopy('TIMEOUT'))).toBe(true);
    expect(TimeoutError.isInstance(foreignCopy('BROKEN_CIRCUIT'))).toBe(false);
    expect(BrokenCircuitError.isInstance(foreignCopy('BROKEN_CIRCUIT', { retryAfterMs: 5 }))).toBe(
      true,
    );
    expect(BulkheadRejectedError.isInstance(foreignCopy('BULKHEAD_REJECTED'))).toBe(true);
    expect(RetryExhaustedError.isInstance(foreignCopy('RETRY_EXHAUSTED'))).toBe(true);
    expect(InvalidOptionError.isInstance(foreignCopy('INVALID_OPTION'))).toBe(true);
  });

  it('isInstance rejects look-alikes and other Postern packages’ errors', () => {
    expect(ResilienceError.isInstance(new Error('plain'))).toBe(false);
    expect(ResilienceError.isInstance(null)).toBe(false);
    expect(ResilienceError.isInstance('TIMEOUT')).toBe(false);
    expect(TimeoutError.isInstance(Object.assign(new Error('x'), { code: 'TIMEOUT' }))).toBe(false);
    const otherPackage = Object.assign(new Error('x'), {
      [Symbol.for('postern.error')]: true,
      code: 'TIMEOUT',
    });
    expect(TimeoutError.isInstance(otherPackage)).toBe(false);
  });

  it('every error carries the shared Postern marker', () => {
    const marker = Symbol.for('postern.error');
    for (const error of [
      new TimeoutError(1),
      new BrokenCircuitError(0, true),
      new InvalidOptionError('a', 'b', 1),
    ]) {
      expect((error as unknown as Record<symbol, unknown>)[marker]).toBe(true);
    }
    expect(new BrokenCircuitError(Infinity, true).message).toContain('isolated');
    expect(new BulkheadRejectedError(1, 1, 'queue-timeout').message).toContain('timed out');
    expect(new BulkheadRejectedError(1, 1).reason).toBe('full');
    expect(new BulkheadRejectedError(1, 1, 'queue-timeout').reason).toBe('queue-timeout');
  });
});
