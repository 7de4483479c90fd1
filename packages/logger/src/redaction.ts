import { LoggerError } from './errors.js';

/**
 * Keys redacted by default, matched whole. Case and separators do not matter to the line
 * scrubber: `Authorization`, `SET_COOKIE` and `password_hash` match too.
 */
export const DEFAULT_REDACT_KEYS: readonly string[] = Object.freeze([
  'password',
  'passwordHash',
  'token',
  'accessToken',
  'refreshToken',
  'idToken',
  'secret',
  'clientSecret',
  'apiKey',
  'x-api-key',
  'privateKey',
  'passphrase',
  'authorization',
  'proxy-authorization',
  'cookie',
  'cookies',
  'set-cookie',
]);

/**
 * Key endings redacted by default when `matchSuffixes` is on: any key that ends in one of these
 * (`newPassword`, `smtp_password`, `jwtSecret`, `x-auth-token`, `stripeApiKey`) is redacted.
 */
export const DEFAULT_REDACT_SUFFIXES: readonly string[] = Object.freeze([
  'password',
  'secret',
  'token',
  'apiKey',
  'passphrase',
  'privateKey',
]);

const KEY_SHAPE = /^[A-Za-z0-9$_-]+$/;
const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** Throws `INVALID_REDACT_KEY` unless `key` is a non-empty run of letters, digits, `$`, `_`, `-`. */
export function assertRedactKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0 || key.length > 128 || !KEY_SHAPE.test(key)) {
    throw new LoggerError(
      'INVALID_REDACT_KEY',
      'redact.keys',
      `redact.keys: ${JSON.stringify(String(key)).slice(0, 140)} is not a key name (use letters, digits, $, _ and -; for nested locations use redact.paths)`,
    );
  }
}

/** Splits `passwordHash`, `password_hash`, `Set-Cookie` into lower-case words. */
function words(key: string): string[] {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .split(/[\s_-]+/)
    .filter((word) => word.length > 0)
    .map((word) => word.toLowerCase());
}

/** The spellings of one key that the structured (top-level) pass knows. */
export function keySpellings(key: string): string[] {
  const parts = words(key);
  const title = (word: string): string => word.charAt(0).toUpperCase() + word.slice(1);
  const camel = parts.map((word, index) => (index === 0 ? word : title(word))).join('');
  return [
    ...new Set([
      key,
      key.toLowerCase(),
      key.toUpperCase(),
      camel,
      parts.join('_'),
      parts.join('-'),
      parts.map(title).join('-'),
      parts.join('_').toUpperCase(),
    ]),
  ];
}

/** A pino redaction path that names one top-level key (bracket notation where needed). */
export function topLevelPath(key: string): string {
  return IDENTIFIER.test(key) ? key : `["${key}"]`;
}

/** Pino paths for the top-level spellings of every key: cheap in pino, unlike `*.` wildcards. */
export function topLevelPaths(keys: readonly string[]): string[] {
  return [...new Set(keys.flatMap((key) => keySpellings(key).map(topLevelPath)))];
}

function escapeRegExp(text: string): string {
  return text.replace(/[$]/g, '\\$&');
}

/** `passwordHash` → `password[-_]?hash`: one pattern for every separator spelling. */
function keyPattern(key: string): string {
  return words(key).map(escapeRegExp).join('[-_]?');
}

/** Regular-expression source for "a sensitive key name", without anchors: whole keys or endings. */
function sensitiveNameSource(keys: readonly string[], suffixes: readonly string[]): string {
  const exact = [...new Set(keys.map(keyPattern))];
  const ends = [...new Set(suffixes.map(keyPattern))];
  const branches: string[] = [];
  // The prefix is bounded so a pathological run of letters costs a bounded amount of backtracking.
  if (ends.length > 0) branches.push(`[A-Za-z0-9$_-]{0,100}(?:${ends.join('|')})`);
  if (exact.length > 0) branches.push(`(?:${exact.join('|')})`);
  return `(?:${branches.join('|')})`;
}

/**
 * Builds the regular expression that finds the tail of a sensitive key, `<name>":`, in a JSON
 * line. Group 1 is set when a key ending matched (any prefix allowed), group 2 when a whole key
 * matched (the key must start right there). The caller checks the prefix by walking back to the
 * key's opening quote: searching from the distinctive tail is several times faster than trying
 * a pattern at every quote of the line. Case-insensitive.
 */
export function sensitiveKeyPattern(keys: readonly string[], suffixes: readonly string[]): RegExp {
  const exact = [...new Set(keys.map(keyPattern))];
  const ends = [...new Set(suffixes.map(keyPattern))];
  const endGroup = ends.length > 0 ? `(${ends.join('|')})` : '((?!))';
  const exactGroup = exact.length > 0 ? `(${exact.join('|')})` : '((?!))';
  // An unescaped `"` followed by `:` always closes a key (a value is followed by `,`, `}` or
  // `]`), so this never matches text inside a string value.
  return new RegExp(`(?:${endGroup}|${exactGroup})"\\s*:\\s*`, 'gi');
}

/**
 * The regular expressions for secrets inside free text: `Bearer <token>`, the password of
 * `scheme://user:password@host`, and the value of a sensitive query parameter (`?token=...`).
 * Each keeps the part before the secret in group 1.
 */
export function sensitiveTextPatterns(
  keys: readonly string[],
  suffixes: readonly string[],
): { bearer: RegExp; url: RegExp; query: RegExp } {
  return {
    bearer: /\b(bearer\s+)[A-Za-z0-9\-._~+/]{16,}=*/gi,
    // From `://` (never from the scheme: a scheme run such as `a.a.a.a…` retried at every word
    // boundary is quadratic) through the user name to the password, which ends at the last `@`
    // before `/`, `?` or `#`, the way URL parsers split `smtp://alice@example.com:p@ss@host`. JSON
    // escapes (`\"`, `\\`) are part of a name or password, so the match never stops inside one.
    url: /(:\/\/(?:[^\s:/?#"\\]|\\["\\]|\\u[0-9a-fA-F]{4})*:)(?:[^\s/?#"\\]|\\["\\]|\\u[0-9a-fA-F]{4})+@/g,
    query: new RegExp(String.raw`([?&]${sensitiveNameSource(keys, suffixes)}=)[^&#\s"\\]*`, 'gi'),
  };
}

const KEY_CHAR = /[A-Za-z0-9$_-]/;
const MAX_KEY_PREFIX = 100;

/**
 * Where the key whose sensitive tail starts at `tailStart` opens (the index of its `"`), or -1
 * when that is not a real key: a key starts after `{` or `,`, and only key characters may come
 * between its quote and the tail (none at all for a whole-key match).
 */
function keyStart(line: string, tailStart: number, wholeKey: boolean): number {
  let index = tailStart - 1;
  if (!wholeKey) {
    const floor = Math.max(0, tailStart - 1 - MAX_KEY_PREFIX);
    while (index > floor && KEY_CHAR.test(line.charAt(index))) index -= 1;
  }
  if (line.charCodeAt(index) !== 0x22) return -1;
  const before = line.charCodeAt(index - 1);
  return before === 0x7b || before === 0x2c ? index : -1;
}

/** Character codes of the JSON a log line is made of, shared by the scanners of lines. */
export const QUOTE = 0x22;
export const BACKSLASH = 0x5c;
export const OPEN_BRACE = 0x7b;
export const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
export const COMMA = 0x2c;
const NEWLINE = 0x0a;

/** Index just past the string that starts at `start` (which holds its opening quote). */
function stringEnd(line: string, start: number): number {
  let index = start + 1;
  while (index < line.length) {
    const code = line.charCodeAt(index);
    if (code === BACKSLASH) index += 2;
    else if (code === QUOTE) return index + 1;
    else index += 1;
  }
  return line.length;
}

/** Index just past the JSON value (string, object, array, or scalar) that starts at `start`. */
export function jsonValueEnd(line: string, start: number): number {
  const first = line.charCodeAt(start);
  if (first === QUOTE) return stringEnd(line, start);
  if (first === OPEN_BRACE || first === OPEN_BRACKET) {
    let depth = 0;
    let index = start;
    while (index < line.length) {
      const code = line.charCodeAt(index);
      if (code === QUOTE) {
        index = stringEnd(line, index);
        continue;
      }
      if (code === OPEN_BRACE || code === OPEN_BRACKET) depth += 1;
      else if (code === CLOSE_BRACE || code === CLOSE_BRACKET) {
        depth -= 1;
        if (depth === 0) return index + 1;
      }
      index += 1;
    }
    return line.length;
  }
  let index = start;
  while (index < line.length) {
    const code = line.charCodeAt(index);
    if (code === COMMA || code === CLOSE_BRACE || code === CLOSE_BRACKET || code === NEWLINE) break;
    index += 1;
  }
  return index;
}

/** Options of {@link createLineScrubber}. */
export interface LineScrubberOptions {
  /** Whole keys to redact. */
  keys: readonly string[];
  /** Key endings to redact; empty to match whole keys only. */
  suffixes: readonly string[];
  /** Text written in place of a value. */
  censor: string;
  /** Also mask `Bearer <token>`, URL passwords and sensitive query parameters inside any string. */
  scrubText: boolean;
}

/**
 * Returns a function that redacts one serialized pino line: the value of every sensitive key, at
 * any depth, whatever its type (a nested object or array is replaced whole), and optionally
 * bearer tokens and URL passwords inside any string, including the message.
 */
export function createLineScrubber(options: LineScrubberOptions): (line: string) => string {
  const pattern = sensitiveKeyPattern(options.keys, options.suffixes);
  const censorJson = JSON.stringify(options.censor);
  const censorText = censorJson.slice(1, -1);
  const text = sensitiveTextPatterns(options.keys, options.suffixes);
  const keepPrefix = (_match: string, prefix: string): string => `${prefix}${censorText}`;
  const keepPrefixAt = (_match: string, prefix: string): string => `${prefix}${censorText}@`;
  // Each text rule runs only when the line holds something it cannot match without: a plain
  // substring search is far cheaper than a case-insensitive pattern tried at every position.
  const scrubText = (line: string): string => {
    let out = line;
    if (out.includes('earer') || out.includes('EARER')) out = out.replace(text.bearer, keepPrefix);
    if (out.includes('://')) out = out.replace(text.url, keepPrefixAt);
    if (out.includes('?') || out.includes('&')) out = out.replace(text.query, keepPrefix);
    return out;
  };

  return (line: string): string => {
    pattern.lastIndex = 0;
    let match = pattern.exec(line);
    let out = line;
    if (match !== null) {
      out = '';
      let from = 0;
      while (match !== null) {
        const valueStart = match.index + match[0].length;
        if (keyStart(line, match.index, match[1] === undefined) === -1) {
          // Not a sensitive key after all (e.g. `mypassword_hash`): look again one character on.
          pattern.lastIndex = match.index + 1;
        } else {
          const valueEnd = jsonValueEnd(line, valueStart);
          out += line.slice(from, valueStart) + censorJson;
          from = valueEnd;
          // Continue after the value: keys inside a redacted object need no second look.
          pattern.lastIndex = Math.max(valueEnd, valueStart + 1);
        }
        match = pattern.exec(line);
      }
      out += line.slice(from);
    }
    return options.scrubText ? scrubText(out) : out;
  };
}

/**
 * The pino `redact.paths` that createLogger passes to pino: every default key (plus `extraKeys`)
 * in its usual spellings, at the top level. Deep and case-insensitive redaction is not in these
 * paths: it is done on the serialized line.
 */
export function redactPaths(extraKeys: readonly string[] = []): string[] {
  for (const key of extraKeys) assertRedactKey(key);
  return topLevelPaths([...DEFAULT_REDACT_KEYS, ...extraKeys]);
}
