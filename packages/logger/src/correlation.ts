import { LoggerError } from './errors.js';

/** Anything with pino's `child(bindings)`: a pino logger, or a hand-written object. */
export interface ChildLogger<L> {
  child(bindings: Record<string, unknown>): L;
}

/** Options of {@link withCorrelation}. */
export interface CorrelationOptions {
  /** Field name the id is logged under. Default: `'correlationId'`. */
  key?: string;
  /** Longest id kept, in characters; longer ids are cut (below 1 counts as 1). Must be finite. Default: 128. */
  maxLength?: number;
}

const DEFAULT_KEY = 'correlationId';
const DEFAULT_MAX_LENGTH = 128;

/** Throws INVALID_OPTION unless `maxLength` is a finite number: NaN would drop every id, Infinity keep any. */
function checkMaxLength(maxLength: unknown, caller: string): void {
  if (typeof maxLength !== 'number' || !Number.isFinite(maxLength)) {
    throw new LoggerError(
      'INVALID_OPTION',
      'maxLength',
      `${caller}: maxLength must be a finite number; got ${typeof maxLength === 'number' ? String(maxLength) : typeof maxLength}`,
    );
  }
}

/**
 * Cleans an id that may come from a request header: keeps printable ASCII except quotes and
 * backslashes (so it cannot forge fields in pretty output or break out of a log line), cuts it to
 * `maxLength`, and gives `'-'` for an id with nothing left.
 */
export function sanitizeCorrelationId(id: string, maxLength: number = DEFAULT_MAX_LENGTH): string {
  checkMaxLength(maxLength, 'sanitizeCorrelationId');
  const text = typeof id === 'string' ? id : String(id);
  const cleaned = text
    .replace(/[^\x21-\x7e]|["'\\`]/g, '')
    .slice(0, Math.max(1, Math.floor(maxLength)));
  return cleaned.length > 0 ? cleaned : '-';
}

/**
 * Returns a child of `logger` whose every line carries `correlationId: id`. The id is sanitized
 * (see {@link sanitizeCorrelationId}), so an attacker-supplied `X-Request-Id` can be passed as is.
 */
export function withCorrelation<L>(
  logger: ChildLogger<L>,
  id: string,
  options: CorrelationOptions = {},
): L {
  if (typeof options !== 'object' || options === null) {
    throw new LoggerError(
      'INVALID_OPTION',
      'options',
      'withCorrelation: options must be an object { key?, maxLength? }',
    );
  }
  const key = options.key ?? DEFAULT_KEY;
  if (typeof key !== 'string' || key.length === 0) {
    throw new LoggerError(
      'INVALID_OPTION',
      'key',
      'withCorrelation: key must be a non-empty string',
    );
  }
  checkMaxLength(options.maxLength ?? DEFAULT_MAX_LENGTH, 'withCorrelation');
  return logger.child({
    [key]: sanitizeCorrelationId(id, options.maxLength ?? DEFAULT_MAX_LENGTH),
  });
}
