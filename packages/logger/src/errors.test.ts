import { describe, expect, it } from 'vitest';
import { LoggerError } from './errors.js';

describe('LoggerError', () => {
  it('carries a stable code, the option, the cause and the Postern markers', () => {
    const cause = new Error('inner');
    const error = new LoggerError('INVALID_REDACT_PATH', 'redact.paths', 'bad path', { cause });
    expect(error).toBeInstanceOf(Error);
    expect([error.name, error.code, error.option, error.message]).toEqual([
      'LoggerError',
      'INVALID_REDACT_PATH',
      'redact.paths',
      'bad path',
    ]);
    expect(error.cause).toBe(cause);
    expect((error as unknown as Record<symbol, unknown>)[Symbol.for('postern.error')]).toBe(true);
    expect(new LoggerError('INVALID_OPTION', 'name', 'x').cause).toBeUndefined();
  });

  it('recognises errors from another copy of the package, and nothing else', () => {
    const foreign = Object.assign(new Error('copy'), {
      [Symbol.for('postern.error')]: true,
      [Symbol.for('postern.logger.error')]: true,
      code: 'INVALID_LEVEL',
    });
    expect(LoggerError.isInstance(foreign)).toBe(true);
    expect(LoggerError.isInstance(new LoggerError('INVALID_LEVEL', 'level', 'x'))).toBe(true);
    expect(
      LoggerError.isInstance(
        Object.assign(new Error('other package'), { [Symbol.for('postern.error')]: true }),
      ),
    ).toBe(false);
    expect(LoggerError.isInstance(new Error('plain'))).toBe(false);
    expect(LoggerError.isInstance(null)).toBe(false);
    expect(LoggerError.isInstance('LoggerError')).toBe(false);
  });
});
