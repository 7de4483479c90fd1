import { describe, expect, it } from 'vitest';
import { sanitizeCorrelationId, withCorrelation } from './correlation.js';
import type { ChildLogger, CorrelationOptions } from './correlation.js';
import { createLogger } from './create-logger.js';
import { LoggerError } from './errors.js';

describe('withCorrelation', () => {
  it('adds correlationId to every line of a real pino child, parent untouched', () => {
    const lines: string[] = [];
    const logger = createLogger({
      name: 'api',
      env: {},
      destination: { write: (line: string) => void lines.push(line) },
    });
    const child = withCorrelation(logger, 'req-7f3a');
    child.info('one');
    child.child({ step: 2 }).warn('two');
    logger.info('parent');
    const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(parsed.map((line) => line['correlationId'])).toEqual([
      'req-7f3a',
      'req-7f3a',
      undefined,
    ]);
    expect(parsed[1]).toMatchObject({ step: 2 });
  });

  it('works with any object that has child(), under a custom key', () => {
    const seen: Record<string, unknown>[] = [];
    const port: ChildLogger<string> = {
      child: (bindings) => {
        seen.push(bindings);
        return 'child';
      },
    };
    expect(withCorrelation(port, 'abc', { key: 'requestId' })).toBe('child');
    expect(seen).toEqual([{ requestId: 'abc' }]);
  });

  it('cleans ids that came from a request header', () => {
    expect(sanitizeCorrelationId('ok-123_ABC.~:')).toBe('ok-123_ABC.~:');
    expect(sanitizeCorrelationId('id\n{"level":60}\u001b[31m')).toBe('id{level:60}[31m');
    expect(sanitizeCorrelationId('\r\n\t ')).toBe('-');
    expect(sanitizeCorrelationId('x'.repeat(500))).toHaveLength(128);
    expect(sanitizeCorrelationId('abcdef', 3)).toBe('abc');
    expect(sanitizeCorrelationId('abcdef', 0)).toBe('a');
    expect(sanitizeCorrelationId(12 as unknown as string)).toBe('12');
  });

  it('passes maxLength through', () => {
    const seen: Record<string, unknown>[] = [];
    withCorrelation({ child: (bindings) => seen.push(bindings) }, 'abcdef', { maxLength: 2 });
    expect(seen).toEqual([{ correlationId: 'ab' }]);
  });
});

describe('correlation option validation', () => {
  it('refuses a maxLength that is not a finite number instead of dropping or keeping the whole id', () => {
    for (const maxLength of [Number.NaN, Infinity, -Infinity, '8' as unknown as number]) {
      for (const call of [
        () => sanitizeCorrelationId('x'.repeat(10_000), maxLength),
        () => withCorrelation({ child: () => undefined }, 'x'.repeat(10_000), { maxLength }),
      ]) {
        let thrown: unknown;
        try {
          call();
        } catch (error) {
          thrown = error;
        }
        expect(LoggerError.isInstance(thrown), String(maxLength)).toBe(true);
        expect(thrown).toMatchObject({ code: 'INVALID_OPTION', option: 'maxLength' });
      }
    }
  });

  it('refuses a key that is not a non-empty string, and options that are not an object', () => {
    const port = { child: () => undefined };
    for (const [options, option] of [
      [{ key: '' }, 'key'],
      [{ key: 5 as unknown as string }, 'key'],
      [null as unknown as CorrelationOptions, 'options'],
    ] as const) {
      expect(() => withCorrelation(port, 'id', options)).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTION', option }),
      );
    }
  });
});
