/** Stable codes of {@link LoggerError}: what went wrong, for programs to branch on. */
export type LoggerErrorCode =
  /** `level` is not one of pino's level names. */
  | 'INVALID_LEVEL'
  /** A key given in `redact.keys` is empty or contains characters other than letters, digits, `$`, `_` and `-`. */
  | 'INVALID_REDACT_KEY'
  /** A path given in `redact.paths` is not valid pino redaction syntax. */
  | 'INVALID_REDACT_PATH'
  /** Any other option has the wrong type or range (the `option` field names it). */
  | 'INVALID_OPTION';

const POSTERN_ERROR = Symbol.for('postern.error');
const LOGGER_ERROR = Symbol.for('postern.logger.error');

/**
 * The one error class of @postern/logger. Thrown only for a programming error, an invalid option
 * of `createLogger`, `redactPaths` or `withCorrelation`; logging itself never throws because of
 * our redaction or line bounds.
 */
export class LoggerError extends Error {
  /** Marks every Postern error, across duplicate copies of a package. */
  readonly [POSTERN_ERROR] = true as const;
  /** Marks errors of this package, across duplicate copies of it. */
  readonly [LOGGER_ERROR] = true as const;
  override readonly name = 'LoggerError' as const;
  /** Stable machine-readable kind of failure. */
  readonly code: LoggerErrorCode;
  /** The option that was refused, e.g. `'level'` or `'redact.paths'`. */
  readonly option: string;

  constructor(
    code: LoggerErrorCode,
    option: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.option = option;
  }

  /** True for a LoggerError from any copy of this package (where `instanceof` fails across copies). */
  static isInstance(value: unknown): value is LoggerError {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as Record<symbol, unknown>)[POSTERN_ERROR] === true &&
      (value as Record<symbol, unknown>)[LOGGER_ERROR] === true
    );
  }
}
