import { hostname } from 'node:os';
import { pino } from 'pino';
import type { DestinationStream, LevelWithSilent, Logger, LoggerOptions } from 'pino';
import { LoggerError } from './errors.js';
import {
  DEFAULT_MAX_LINE_LENGTH,
  DEFAULT_MAX_STRING_LENGTH,
  MIN_MAX_LINE_LENGTH,
  MIN_MAX_STRING_LENGTH,
  createLineLimiter,
} from './line-limit.js';
import { defaultRequire, loadPretty } from './pretty.js';
import { serializeError } from './serialize-error.js';
import type { RequireFunction } from './pretty.js';
import {
  DEFAULT_REDACT_KEYS,
  DEFAULT_REDACT_SUFFIXES,
  assertRedactKey,
  createLineScrubber,
  redactPaths,
} from './redaction.js';

/** Redaction settings. The defaults always apply: options can add to them, never remove them. */
export interface RedactOptions {
  /** Extra whole keys to redact at every depth, like the defaults. Default: none. */
  keys?: readonly string[];
  /** Extra exact pino redaction paths, e.g. `'order.card.number'`. Default: none. */
  paths?: readonly string[];
  /** Text written in place of a redacted value. Default: `'[Redacted]'`. */
  censor?: string;
  /** Redact any key that ends in password, secret, token, apiKey, passphrase or privateKey. Default: true. */
  matchSuffixes?: boolean;
  /** Mask `Bearer <token>`, `scheme://user:password@` and `?token=` query values inside any string, the message included. Default: true. */
  scrubText?: boolean;
}

/** Options of {@link createLogger}. */
export interface CreateLoggerOptions {
  /** Service or component name, written as `name` on every line. Required. */
  name: string;
  /** Lowest level written. Default: `'info'`. */
  level?: LevelWithSilent;
  /** Redaction added to the defaults. Default: the defaults only. */
  redact?: RedactOptions;
  /**
   * Longest string, value or key, written whole, in characters (UTF-16 code units); a longer one
   * keeps its first `maxStringLength` characters and ends with `...[truncated N chars]`. Applied
   * after redaction. At least 16. Default: 16_384.
   */
  maxStringLength?: number;
  /**
   * Longest line written, in characters, newline included. A line still longer once its strings
   * are cut has its largest top-level values replaced by `"[truncated N chars]"` (and, if its
   * fields alone are too many, fields dropped and counted in `logTruncated`). At least 1_024.
   * Default: 262_144 (256 KiB).
   */
  maxLineLength?: number;
  /**
   * Human-readable output through pino-pretty. Default: true when `NODE_ENV` is `development`.
   * Ignored (JSON is written, with one warning line) when `NODE_ENV` is `production` or
   * pino-pretty does not resolve.
   */
  pretty?: boolean;
  /** Where lines go: any object with `write(line)`. Default: standard output. */
  destination?: DestinationStream;
  /** Extra fields on every line. Default: `{ pid, hostname }` only. */
  base?: Readonly<Record<string, unknown>>;
  /** Environment read for `NODE_ENV`. Default: `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Milliseconds since the epoch for the `time` field. Default: `Date.now`. */
  clock?: () => number;
  /** How pino-pretty is found (tests replace it). Default: `require` relative to this package. */
  requirePretty?: RequireFunction;
}

const DEFAULT_CENSOR = '[Redacted]';

function validate(options: CreateLoggerOptions): void {
  if (typeof options !== 'object' || options === null) {
    throw new LoggerError(
      'INVALID_OPTION',
      'options',
      'createLogger: options must be an object with a name',
    );
  }
  if (typeof options.name !== 'string' || options.name.trim().length === 0) {
    throw new LoggerError(
      'INVALID_OPTION',
      'name',
      'createLogger: name must be a non-empty string',
    );
  }
  const level = options.level;
  if (level !== undefined && level !== 'silent' && !Object.hasOwn(pino.levels.values, level)) {
    throw new LoggerError(
      'INVALID_LEVEL',
      'level',
      `createLogger: level ${JSON.stringify(String(level)).slice(0, 40)} is not one of fatal, error, warn, info, debug, trace, silent`,
    );
  }
  const wrongType = (option: string, expected: string): never => {
    throw new LoggerError('INVALID_OPTION', option, `createLogger: ${option} must be ${expected}`);
  };
  const isRecord = (value: unknown): boolean =>
    typeof value === 'object' && value !== null && !Array.isArray(value);
  const destination: unknown = options.destination;
  if (
    destination !== undefined &&
    ((typeof destination !== 'object' && typeof destination !== 'function') ||
      destination === null ||
      typeof (destination as { write?: unknown }).write !== 'function')
  ) {
    wrongType('destination', 'an object with a write(line) method');
  }
  if (options.pretty !== undefined && typeof options.pretty !== 'boolean') {
    wrongType('pretty', 'a boolean');
  }
  if (options.requirePretty !== undefined && typeof options.requirePretty !== 'function') {
    wrongType('requirePretty', 'a function');
  }
  // null was always taken as "not given" for these three, so it still is.
  if (options.base != null && !isRecord(options.base)) wrongType('base', 'an object');
  if (options.env != null && !isRecord(options.env)) wrongType('env', 'an object');
  if (options.redact != null && !isRecord(options.redact)) wrongType('redact', 'an object');
  const redact = options.redact ?? {};
  for (const flag of ['matchSuffixes', 'scrubText'] as const) {
    if (redact[flag] !== undefined && typeof redact[flag] !== 'boolean') {
      wrongType(`redact.${flag}`, 'a boolean');
    }
  }
  if (redact.censor !== undefined && typeof redact.censor !== 'string') {
    throw new LoggerError(
      'INVALID_OPTION',
      'redact.censor',
      'createLogger: redact.censor must be a string',
    );
  }
  if (redact.keys !== undefined && !Array.isArray(redact.keys)) {
    throw new LoggerError(
      'INVALID_OPTION',
      'redact.keys',
      'createLogger: redact.keys must be an array of key names',
    );
  }
  for (const key of redact.keys ?? []) assertRedactKey(key);
  if (redact.paths !== undefined && !Array.isArray(redact.paths)) {
    throw new LoggerError(
      'INVALID_OPTION',
      'redact.paths',
      'createLogger: redact.paths must be an array of paths',
    );
  }
  for (const path of redact.paths ?? []) assertRedactPath(path);
  checkLength('maxStringLength', options.maxStringLength, MIN_MAX_STRING_LENGTH);
  checkLength('maxLineLength', options.maxLineLength, MIN_MAX_LINE_LENGTH);
  if (options.clock !== undefined && typeof options.clock !== 'function') {
    throw new LoggerError(
      'INVALID_OPTION',
      'clock',
      'createLogger: clock must be a function returning milliseconds',
    );
  }
}

/** Throws INVALID_OPTION unless `value` is absent or an integer from `min` to 2^53-1. */
function checkLength(option: string, value: unknown, min: number): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new LoggerError(
      'INVALID_OPTION',
      option,
      `createLogger: ${option} must be an integer from ${String(min)} to ${String(Number.MAX_SAFE_INTEGER)}; got ${typeof value === 'number' ? String(value) : typeof value}`,
    );
  }
}

function finiteOrNow(value: number): number {
  return Number.isFinite(value) ? value : Date.now();
}

const nullDestination: DestinationStream = { write: () => undefined };

function assertRedactPath(path: unknown): void {
  const fail = (cause?: unknown): never => {
    throw new LoggerError(
      'INVALID_REDACT_PATH',
      'redact.paths',
      `createLogger: redact.paths contains an invalid path ${JSON.stringify(String(path)).slice(0, 140)} (use dots and ["quoted-keys"])`,
      cause === undefined ? undefined : { cause },
    );
  };
  if (typeof path !== 'string' || path.trim().length === 0) fail();
  try {
    // pino parses paths when a logger is built, so building a throwaway one is the exact check.
    pino({ redact: [path as string] }, nullDestination);
  } catch (error) {
    fail(error);
  }
}

/**
 * Creates a pino logger with Postern's redaction preset: passwords, tokens, secrets, API keys,
 * cookies and authorization headers are replaced by `[Redacted]` at any depth, in any letter
 * case, in the object you log, child bindings and serialized errors alike.
 */
export function createLogger(options: CreateLoggerOptions): Logger {
  validate(options);
  const redact = options.redact ?? {};
  const env = options.env ?? process.env;
  const censor = redact.censor ?? DEFAULT_CENSOR;
  const keys = [...DEFAULT_REDACT_KEYS, ...(redact.keys ?? [])];
  const scrub = createLineScrubber({
    keys,
    suffixes: redact.matchSuffixes === false ? [] : DEFAULT_REDACT_SUFFIXES,
    censor,
    scrubText: redact.scrubText !== false,
  });
  // Bounded after redaction, so a cut can never leave part of a secret that a rule would have masked.
  const limit = createLineLimiter({
    maxStringLength: options.maxStringLength ?? DEFAULT_MAX_STRING_LENGTH,
    maxLineLength: options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH,
  });

  const production = env['NODE_ENV'] === 'production';
  const wantsPretty = options.pretty ?? env['NODE_ENV'] === 'development';
  const warnings: { code: string; detail: string }[] = [];
  let destination = options.destination;
  if (wantsPretty && production) {
    warnings.push({
      code: 'PRETTY_DISABLED_IN_PRODUCTION',
      detail: 'pretty output is off when NODE_ENV=production',
    });
  } else if (wantsPretty) {
    const target = destination ?? process.stdout;
    const colorize = options.destination === undefined && process.stdout.isTTY;
    const loaded = loadPretty(options.requirePretty ?? defaultRequire(), { colorize });
    if (loaded.ok) {
      const prettify = loaded.prettify;
      destination = { write: (line: string) => target.write(prettify(line)) };
    } else {
      warnings.push({ code: loaded.reason, detail: `${loaded.detail}; writing JSON` });
    }
  }

  const clock = options.clock;
  const pinoOptions: LoggerOptions = {
    name: options.name,
    level: options.level ?? 'info',
    base: { pid: process.pid, hostname: hostname(), ...options.base },
    // Top-level paths are nearly free in pino (a per-key lookup) and also cover objects
    // interpolated with %o / %j; deep and case-insensitive redaction happens on the line.
    redact: { paths: [...redactPaths(redact.keys), ...(redact.paths ?? [])], censor },
    // pino's err serializer, except that an error it cannot read is written in part, not thrown.
    serializers: { err: serializeError, error: serializeError },
    hooks: { streamWrite: (line: string) => limit(scrub(line)) },
    // A clock that returns NaN or Infinity must not make the line invalid JSON.
    ...(clock === undefined ? {} : { timestamp: () => `,"time":${String(finiteOrNow(clock()))}` }),
  };
  const logger = destination === undefined ? pino(pinoOptions) : pino(pinoOptions, destination);
  for (const warning of warnings) logger.warn({ loggerWarning: warning.code }, warning.detail);
  return logger;
}
