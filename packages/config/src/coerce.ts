import * as z from 'zod';
import { ConfigError } from './errors.js';
import { type DirectIssue, directOf, registerDirect, withDirectIssues } from './direct.js';

/** A schema that reads one environment string and gives a typed value. */
export type EnvSchema<T> = z.ZodPipe<z.ZodString, z.ZodTransform<T, string>>;

/** A schema whose input is a string, as every environment variable is. */
export type StringInputSchema = z.ZodType<unknown, string>;

/** A parse failure; its message never contains the input. */
class Failure {
  constructor(readonly message: string) {}
}

const fail = (message: string): Failure => new Failure(message);
const NO_PATH: readonly (string | number)[] = Object.freeze([]);

function fromString<T>(parse: (value: string) => T | Failure): EnvSchema<T> {
  const schema = z.string().transform((input, context) => {
    const result = parse(input);
    if (result instanceof Failure) {
      // The input is deliberately left out of the issue: it may be a secret typed in the wrong place.
      context.issues.push({ code: 'custom', message: result.message, input: undefined });
      return z.NEVER;
    }
    return result;
  });
  // loadConfig calls `parse` directly: same checks and messages, without zod's pipe per variable.
  return registerDirect(schema, (raw, issues) => {
    const result = parse(raw);
    if (result instanceof Failure) {
      issues.push({ message: result.message, path: NO_PATH });
      return undefined;
    }
    return result;
  });
}

const TRUE_WORDS = new Set(['true', '1', 'yes']);
const FALSE_WORDS = new Set(['false', '0', 'no']);

/**
 * A boolean: `true`/`false`/`1`/`0`/`yes`/`no` in any letter case, surrounding spaces ignored.
 * Anything else is an error, never JavaScript truthiness (`"false"` is false, `"off"` is refused).
 */
export function bool(): EnvSchema<boolean> {
  return fromString((raw) => {
    const word = raw.trim().toLowerCase();
    if (TRUE_WORDS.has(word)) return true;
    if (FALSE_WORDS.has(word)) return false;
    return fail('must be one of true, false, 1, 0, yes, no');
  });
}

/** Options of {@link integer} and {@link number}. */
export interface RangeOptions {
  /** Smallest value allowed (inclusive). Default: none. */
  min?: number;
  /** Largest value allowed (inclusive). Default: none. */
  max?: number;
}

function checkRange(value: number, options: RangeOptions): number | Failure {
  if (options.min !== undefined && value < options.min)
    return fail(`must be at least ${String(options.min)}`);
  if (options.max !== undefined && value > options.max)
    return fail(`must be at most ${String(options.max)}`);
  return value;
}

const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(?:\d+(?:\.\d+)?|\.\d+)$/;

/**
 * An integer in plain decimal digits, optionally signed. Hex (`0x10`), exponents (`1e3`),
 * fractions, `Infinity` and empty strings are errors, unlike `Number()`.
 */
export function integer(options: RangeOptions = {}): EnvSchema<number> {
  return fromString((raw) => {
    const text = raw.trim();
    if (!INTEGER.test(text)) return fail('must be an integer written in decimal digits');
    const value = Number(text);
    if (!Number.isSafeInteger(value)) return fail('is outside the safe integer range');
    return checkRange(value, options);
  });
}

/** A decimal number such as `0.25` or `-3`. Hex, exponents, `NaN` and `Infinity` are errors. */
export function number(options: RangeOptions = {}): EnvSchema<number> {
  return fromString((raw) => {
    const text = raw.trim();
    if (!DECIMAL.test(text)) return fail('must be a decimal number');
    const value = Number(text);
    if (!Number.isFinite(value)) return fail('is outside the number range');
    return checkRange(value, options);
  });
}

/** Options of {@link port}. */
export interface PortOptions {
  /** Accept `0` (let the OS choose an ephemeral port). Default: false. */
  allowZero?: boolean;
}

/** A TCP/UDP port: decimal digits, 1-65535 (0 too with `allowZero`). */
export function port(options: PortOptions = {}): EnvSchema<number> {
  const min = options.allowZero === true ? 0 : 1;
  return fromString((raw) => {
    const text = raw.trim();
    if (!/^\d+$/.test(text)) return fail(`must be a port number between ${String(min)} and 65535`);
    const value = Number(text);
    if (value < min || value > 65_535)
      return fail(`must be a port number between ${String(min)} and 65535`);
    return value;
  });
}

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^(?:\d+(?:ms|s|m|h|d))+$/;
const DURATION_PART = /(\d+)(ms|s|m|h|d)/g;

/** Options of {@link duration}. */
export interface DurationOptions {
  /** Shortest duration allowed, in ms (inclusive). Default: none. */
  minMs?: number;
  /** Longest duration allowed, in ms (inclusive). Default: none. */
  maxMs?: number;
}

/** Parses `"250ms"`, `"30s"`, `"15m"`, `"12h"`, `"7d"` or `"1h30m"` into milliseconds; `undefined` if malformed. */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (trimmed === '0') return 0;
  if (!DURATION.test(trimmed)) return undefined;
  let total = 0;
  for (const [, amount, unit] of trimmed.matchAll(DURATION_PART)) {
    total += Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS];
  }
  return Number.isSafeInteger(total) ? total : undefined;
}

/**
 * A duration in milliseconds, written with a unit: `250ms`, `30s`, `15m`, `12h`, `7d`, or combined
 * (`1h30m`). A bare number is an error (seconds or milliseconds?), except `0`; so is a space (`10 m`).
 */
export function duration(options: DurationOptions = {}): EnvSchema<number> {
  return fromString((raw) => {
    const value = parseDuration(raw);
    if (value === undefined) return fail('must be a duration such as 250ms, 30s, 15m, 12h or 7d');
    if (options.minMs !== undefined && value < options.minMs)
      return fail(`must be at least ${String(options.minMs)}ms`);
    if (options.maxMs !== undefined && value > options.maxMs)
      return fail(`must be at most ${String(options.maxMs)}ms`);
    return value;
  });
}

/** Options of {@link list}. */
export interface ListOptions {
  /** Text between items. Default: `','`. */
  separator?: string;
  /** Fewest items allowed. Default: 0. */
  minItems?: number;
}

/**
 * A separated list: split on `separator`, each item trimmed and parsed by `item` (a string schema
 * by default, or `port()`, `url()`, `z.enum([...])`…). An empty item (`a,,b`) is an error.
 */
export function list<Item extends StringInputSchema = z.ZodString>(
  item?: Item,
  options: ListOptions = {},
): EnvSchema<z.output<Item>[]> {
  const itemSchema = item ?? z.string();
  const separator = options.separator ?? ',';
  if (separator === '')
    throw new ConfigError('SHAPE_INVALID', 'list() separator must not be empty');
  const minItems = options.minItems ?? 0;
  // The default item, z.string(), accepts every string as it is.
  const itemDirect = item === undefined ? (part: string): unknown => part : directOf(item);
  // Issues carry their path inside the value (`[index, ...]`); the caller adds the variable's.
  const parse = (raw: string, issues: DirectIssue[]): z.output<Item>[] => {
    const trimmed = raw.trim();
    const parts = trimmed === '' ? [] : trimmed.split(separator);
    const values: z.output<Item>[] = [];
    for (let index = 0; index < parts.length; index += 1) {
      const part = parts[index]!.trim();
      if (part === '') {
        issues.push({ message: 'is empty', path: [index] });
        continue;
      }
      if (itemDirect !== undefined) {
        const before = issues.length;
        const value = itemDirect(part, issues);
        if (issues.length === before) {
          values.push(value as z.output<Item>);
        } else {
          for (let at = before; at < issues.length; at += 1)
            issues[at] = { message: issues[at]!.message, path: [index, ...issues[at]!.path] };
        }
        continue;
      }
      const result = z.safeParse(itemSchema, part);
      if (result.success) {
        values.push(result.data as z.output<Item>);
        continue;
      }
      for (const issue of result.error.issues) {
        issues.push({
          message: issue.message,
          path: [index, ...(issue.path as (string | number)[])],
        });
      }
    }
    if (parts.length < minItems) {
      issues.push({ message: `must have at least ${String(minItems)} items`, path: NO_PATH });
    }
    return values;
  };
  const schema = z
    .string()
    .transform((raw, context) => withDirectIssues(context, (issues) => parse(raw, issues)));
  // For loadConfig, which deep-freezes every value: an array of primitives and frozen items
  // (Secrets) is frozen here, where that is already known, so it needs no walk there.
  return registerDirect(schema, (raw, issues) => {
    const values = parse(raw, issues);
    for (const value of values)
      if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) return values;
    return Object.freeze(values);
  });
}

/** Options of {@link url}. */
export interface UrlOptions {
  /** Schemes allowed, without the colon. Default: `['http', 'https']`. */
  protocols?: readonly string[];
}

// Schemes with no `//authority` part; every other scheme must be written `scheme://`.
const OPAQUE_SCHEMES = new Set(['mailto', 'urn', 'data', 'tel']);
const URL_SCHEME = /^[a-z][a-z0-9+.-]*$/;

/**
 * A URL (returned as the trimmed string) whose scheme is in `protocols`. Unlike `new URL()` alone,
 * `http:example.com` and `http:/example.com` are errors, and `javascript:` is refused by default.
 */
export function url(options: UrlOptions = {}): EnvSchema<string> {
  // Only valid scheme names: no URL could match another, and a match needs no further scheme check.
  const protocols = new Set(
    (options.protocols ?? ['http', 'https'])
      .map((protocol) => protocol.toLowerCase().replace(/:$/, ''))
      .filter((protocol) => URL_SCHEME.test(protocol)),
  );
  const expected = [...protocols].join(', ');
  return fromString((raw) => {
    const text = raw.trim();
    // The scheme as the URL parser reads it (letters, digits, `+-.` before the first colon); text
    // that does not literally start with an allowed one fails the checks below either way.
    const colon = text.indexOf(':');
    const scheme = colon > 0 ? text.slice(0, colon).toLowerCase() : '';
    // An allowed scheme is a valid one, so its check is left for the failure path.
    if (!(protocols.has(scheme) || URL_SCHEME.test(scheme)) || !URL.canParse(text))
      return fail('must be an absolute URL');
    if (!protocols.has(scheme)) return fail(`must use one of these protocols: ${expected}`);
    if (!OPAQUE_SCHEMES.has(scheme) && !text.startsWith('//', colon + 1)) {
      return fail(`must be written as ${scheme}://…`);
    }
    return text;
  });
}

const emailSchema = z.email();

/** An email address (zod's email check), surrounding spaces ignored. */
export function email(): EnvSchema<string> {
  return fromString((raw) => {
    const text = raw.trim();
    return emailSchema.safeParse(text).success ? text : fail('must be an email address');
  });
}
