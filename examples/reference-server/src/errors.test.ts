import { describe, expect, it } from 'vitest';
import { ServerError } from './errors.js';

describe('ServerError', () => {
  it('carries a stable code, status and structured fields', () => {
    const cause = new Error('inner');
    const error = new ServerError('RATE_LIMITED', 'slow down', {
      status: 429,
      retryAfterMs: 1500,
      field: 'body.email',
      cause,
    });
    expect(error).toMatchObject({
      code: 'RATE_LIMITED',
      status: 429,
      retryAfterMs: 1500,
      field: 'body.email',
      name: 'ServerError',
    });
    expect(error.cause).toBe(cause);
    expect(new ServerError('INTERNAL', 'x').status).toBe(500);
  });

  it('isInstance recognises a copy from another module instance, and nothing else', () => {
    const copy = Object.assign(new Error('x'), {
      [Symbol.for('postern.error')]: true,
      package: '@postern/reference-server',
      code: 'NOT_FOUND',
      status: 404,
    });
    expect(ServerError.isInstance(copy)).toBe(true);
    expect(ServerError.isInstance(new ServerError('NOT_FOUND', 'x'))).toBe(true);
    expect(
      ServerError.isInstance(
        Object.assign(new Error('x'), {
          [Symbol.for('postern.error')]: true,
          package: '@postern/auth',
          code: 'X',
        }),
      ),
    ).toBe(false);
    expect(ServerError.isInstance(new Error('x'))).toBe(false);
    expect(ServerError.isInstance(null)).toBe(false);
  });
});
