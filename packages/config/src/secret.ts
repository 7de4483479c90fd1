import * as z from 'zod';
import { type DirectIssue, directOf, registerDirect, withDirectIssues } from './direct.js';

const REDACTED = '[redacted]';
const SECRET_MARKER = Symbol.for('postern.config.secret');
// Policy and origin (never the value) for loadConfig from another copy of this package.
const SECRET_CHECK = Symbol.for('postern.config.secret.check');

interface SecretState {
  readonly value: string;
  readonly policy: SecretPolicy;
  readonly fromDefault: boolean;
}

/** The strength a secret must have in production (in development, a warning). */
export interface SecretPolicy {
  /** Fewest characters allowed. */
  readonly minLength: number;
  /** Least estimated entropy allowed, in bits (Shannon entropy of the characters times the length). */
  readonly minEntropyBits: number;
}

// Handed from createSecret to the constructor, so a secret's policy and origin are set once.
let pendingState: SecretState | undefined;

/**
 * A secret value that will not leak by accident: `String()`, template literals, `JSON.stringify`,
 * `util.inspect` and `console.log` all give `[redacted]`; only `reveal()` gives the value.
 */
export class Secret {
  // A private field: no enumeration, inspection, spread, structuredClone or reflection reaches it.
  readonly #state: SecretState;

  /** Wraps `value`. Prefer `secret()` in a config shape, which also checks its strength. */
  constructor(value: string) {
    this.#state = pendingState ?? { value, policy: DEFAULT_POLICY, fromDefault: false };
    pendingState = undefined;
    Object.freeze(this);
  }

  /** The secret value. Call it where the value is used, never where it is logged. */
  reveal(): string {
    if (!(#state in this))
      throw new TypeError('Secret.reveal() called on an object that is not a Secret');
    return this.#state.value;
  }

  /** Compares with another secret or string without revealing either; time depends on length only. */
  equals(other: Secret | string): boolean {
    const left = this.reveal();
    const right = typeof other === 'string' ? other : other.reveal();
    let difference = left.length ^ right.length;
    for (let index = 0; index < left.length; index += 1) {
      difference |= left.charCodeAt(index) ^ right.charCodeAt(index % Math.max(right.length, 1));
    }
    return difference === 0;
  }

  /** How `loadConfig` (from any copy of this package) learns the policy and origin; no value. */
  [SECRET_CHECK](): { policy: SecretPolicy; fromDefault: boolean } {
    return { policy: this.#state.policy, fromDefault: this.#state.fromDefault };
  }

  /** Always `[redacted]`. */
  toString(): string {
    return REDACTED;
  }

  /** Always `[redacted]`, so `JSON.stringify` never writes the value. */
  toJSON(): string {
    return REDACTED;
  }

  /** Always `[redacted]`, for `+`, template literals and `==`. */
  [Symbol.toPrimitive](): string {
    return REDACTED;
  }

  /** Always `[redacted]`, for `util.inspect` and `console.log`. */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return REDACTED;
  }

  /** True for a Secret from any copy of this package. */
  static isInstance(value: unknown): value is Secret {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as Record<symbol, unknown>)[SECRET_MARKER] === true
    );
  }

  /** This copy's state of `secret`, or undefined for a Secret made by another copy. Not public. */
  static stateOf(secret: Secret): SecretState | undefined {
    return #state in secret ? secret.#state : undefined;
  }
}

// On the prototype, not the instance: a Secret has no own properties at all.
Object.defineProperty(Secret.prototype, SECRET_MARKER, { value: true });

/** Default strength floor: 16 characters and 48 bits of estimated entropy. */
export const DEFAULT_POLICY: SecretPolicy = Object.freeze({ minLength: 16, minEntropyBits: 48 });

function createSecret(value: string, policy: SecretPolicy, fromDefault: boolean): Secret {
  pendingState = { value, policy, fromDefault };
  return new Secret(value);
}

/**
 * A parsed secret's value, policy and origin, also for a Secret made by another copy of this
 * package (dual ESM/CJS loading), so its checks are never silently skipped. Not public.
 */
export function secretState(secret: Secret): SecretState {
  const own = Secret.stateOf(secret);
  if (own !== undefined) return own;
  const check = (
    secret as unknown as Record<
      symbol,
      (() => { policy: SecretPolicy; fromDefault: boolean }) | undefined
    >
  )[SECRET_CHECK];
  const details =
    typeof check === 'function'
      ? check.call(secret)
      : { policy: DEFAULT_POLICY, fromDefault: false };
  return { value: secret.reveal(), policy: details.policy, fromDefault: details.fromDefault };
}

/** Options of {@link secret}. */
export interface SecretOptions {
  /** Fewest characters allowed in production. Default: 16. */
  minLength?: number;
  /** Least estimated entropy in production, in bits. Default: 48. */
  minEntropyBits?: number;
  /**
   * Value used when the variable is not set. Production mode refuses to start on it (and on an
   * explicitly set value equal to it); development uses it with a warning. Default: none (required).
   */
  default?: string;
  /**
   * A schema the value must also pass, e.g. `url({ protocols: ['postgres'] })` for a connection
   * string with a password. Its messages never include the value. Default: none.
   */
  format?: z.core.$ZodType<unknown, string>;
}

/** The schema `secret()` returns: a string in, a {@link Secret} out. */
export type SecretSchema = z.ZodPipe<z.ZodString, z.ZodTransform<Secret, string>>;
/** The schema `secret({ default })` returns: the variable may be missing. */
export type SecretWithDefaultSchema = z.ZodPipe<
  z.ZodOptional<z.ZodString>,
  z.ZodTransform<Secret, string | undefined>
>;

/**
 * A secret variable: parsed into a {@link Secret}. `loadConfig` refuses in production (and warns
 * in development) when it is missing, defaulted, a well-known default, one repeated character,
 * shorter than `minLength` or below `minEntropyBits`.
 */
export function secret(options: SecretOptions & { default: string }): SecretWithDefaultSchema;
export function secret(options?: SecretOptions): SecretSchema;
export function secret(options: SecretOptions = {}): SecretSchema | SecretWithDefaultSchema {
  const policy: SecretPolicy = Object.freeze({
    minLength: options.minLength ?? DEFAULT_POLICY.minLength,
    minEntropyBits: options.minEntropyBits ?? DEFAULT_POLICY.minEntropyBits,
  });
  const fallback = options.default;
  const format = options.format;
  const formatDirect = format === undefined ? undefined : directOf(format);
  const make = (value: string, fromDefault: boolean, issues: DirectIssue[]): Secret => {
    if (formatDirect !== undefined) {
      const before = issues.length;
      formatDirect(value, issues);
      for (let at = before; at < issues.length; at += 1) {
        const issue = issues[at]!;
        if (value.length > 0)
          issues[at] = { message: issue.message.split(value).join(REDACTED), path: issue.path };
      }
    } else if (format !== undefined) {
      const result = z.safeParse(format, value);
      if (!result.success) {
        for (const issue of result.error.issues) {
          // Format messages are the format's; the value is cut out in case one repeats it.
          const message =
            value.length > 0 ? issue.message.split(value).join(REDACTED) : issue.message;
          issues.push({ message, path: issue.path as (string | number)[] });
        }
      }
    }
    return createSecret(value, policy, fromDefault);
  };
  const run = (value: string, fromDefault: boolean, context: z.core.$RefinementCtx): Secret =>
    withDirectIssues(context, (issues) => make(value, fromDefault, issues));
  // loadConfig calls `make` directly for a set variable: the same checks, without zod's pipe.
  if (fallback === undefined) {
    return registerDirect(
      z.string().transform((value, context) => run(value, false, context)),
      (raw, issues) => make(raw, false, issues),
    );
  }
  return registerDirect(
    z
      .string()
      .optional()
      .transform((value, context) =>
        value === undefined
          ? run(fallback, true, context)
          : run(value, matchesDefault(value, fallback), context),
      ),
    (raw, issues) => make(raw, matchesDefault(raw, fallback), issues),
  );
}

/**
 * Values shipped as defaults or placeholders by tutorials, images and `.env.example` files. Compared
 * case-insensitively with everything but letters and digits removed (`Change-Me` is `changeme`).
 */
export const KNOWN_DEFAULT_SECRETS: readonly string[] = Object.freeze([
  'changeme',
  'change-me',
  'changeit',
  'replaceme',
  'secret',
  'secretkey',
  'secret-key',
  'mysecret',
  'supersecret',
  'super-secret',
  'topsecret',
  'your-secret-key',
  'your-secret',
  'yoursecretkeyhere',
  'jwt-secret',
  'jwtsecret',
  'session-secret',
  'keyboard cat',
  'password',
  'passw0rd',
  'p@ssw0rd',
  'password1',
  'password123',
  'pass',
  'admin',
  'admin123',
  'administrator',
  'root',
  'toor',
  'minioadmin',
  'minio123',
  'test',
  'testing',
  'default',
  'example',
  'sample',
  'guest',
  'letmein',
  'qwerty',
  'abc123',
  '123456',
  '12345678',
  '123456789',
  '1234567890',
  'postgres',
  'mysql',
  'redis',
  'dev',
  'development',
  'insecure',
  'notasecret',
  'foobar',
  'xxx',
  'todo',
  's3cr3t',
  'hunter2',
]);

// Letters and digits of any script are kept, so a non-ASCII passphrase never collapses onto a known default.
const NOT_LETTER_OR_DIGIT = /[^\p{L}\p{N}]/gu;
function normalize(value: string): string {
  // ASCII (most secrets): keep [a-z0-9] in a loop, without the Unicode-aware regex.
  let result = '';
  for (let index = 0; index < value.length; index += 1) {
    let code = value.charCodeAt(index);
    if (code > 127) return value.toLowerCase().replace(NOT_LETTER_OR_DIGIT, '');
    if (code >= 65 && code <= 90) code += 32;
    if ((code >= 97 && code <= 122) || (code >= 48 && code <= 57))
      result += String.fromCharCode(code);
  }
  return result;
}
const knownDefaults = new Set(KNOWN_DEFAULT_SECRETS.map(normalize));

/**
 * Whether `value` is a secret's default: the same text, or the same once case, spaces and
 * punctuation are ignored (` Dev-Default\n` is `dev-default`), as known defaults are compared. Not public.
 */
export function matchesDefault(value: string, fallback: string): boolean {
  if (value === fallback) return true;
  const normalized = normalize(fallback);
  return normalized !== '' && normalize(value) === normalized;
}
// Placeholders that templates wrap in other words ("please-change-me-now", "<your-secret-here>").
const placeholderMarkers = ['changeme', 'replaceme', 'yoursecret', 'placeholder', 'insecure'];

function hasPlaceholderMarker(normalized: string): boolean {
  for (const marker of placeholderMarkers) if (normalized.includes(marker)) return true;
  return false;
}

const COUNT_LOG_TABLE = Float64Array.from({ length: 257 }, (_, count) =>
  count === 0 ? 0 : count * Math.log2(count),
);
// Reused counters for the common all-ASCII case: no allocation per call.
const asciiCounts = new Uint32Array(128);
const asciiSeen = new Uint8Array(128);
const countLog = (count: number): number =>
  count < COUNT_LOG_TABLE.length ? COUNT_LOG_TABLE[count]! : count * Math.log2(count);

/** Estimated entropy in bits: Shannon entropy of the character frequencies times the length. */
export function entropyBits(value: string): number {
  const length = value.length;
  if (length === 0) return 0;
  // n·H = n·log2(n) − Σ c·log2(c), with c·log2(c) looked up for small counts.
  let sum = 0;
  // All-ASCII (the common case): one counting pass into reused counters, remembering which
  // characters occur, then one pass over those; no allocation.
  let distinct = 0;
  let index = 0;
  for (; index < length; index += 1) {
    const code = value.charCodeAt(index);
    if (code > 127) break;
    const count = asciiCounts[code]!;
    asciiCounts[code] = count + 1;
    if (count === 0) asciiSeen[distinct++] = code;
  }
  for (let at = 0; at < distinct; at += 1) {
    const code = asciiSeen[at]!;
    sum += countLog(asciiCounts[code]!);
    asciiCounts[code] = 0;
  }
  if (index === length) return Math.max(0, length * Math.log2(length) - sum);
  const byCharacter = new Map<string, number>();
  let total = 0;
  for (const character of value) {
    byCharacter.set(character, (byCharacter.get(character) ?? 0) + 1);
    total += 1;
  }
  sum = 0;
  for (const count of byCharacter.values()) sum += countLog(count);
  return Math.max(0, total * Math.log2(total) - sum);
}

function repeatsOneCharacter(value: string): boolean {
  const first = value.codePointAt(0);
  if (first === undefined) return false;
  const step = first > 0xffff ? 2 : 1;
  for (let index = step; index < value.length; index += step) {
    if (value.codePointAt(index) !== first) return false;
  }
  return true;
}

function characterCount(value: string): number {
  let count = 0;
  for (let index = 0; index < value.length; index += 1) {
    const code = value.charCodeAt(index);
    // A high surrogate and the low one after it make one character.
    if (code < 0xd800 || code > 0xdbff) count += 1;
  }
  return count;
}

/** One reason a secret is weak, most specific first; `undefined` when it passes. */
export function assessSecret(
  value: string,
  policy: SecretPolicy,
  fromDefault: boolean,
):
  | {
      code:
        | 'SECRET_DEFAULT'
        | 'SECRET_KNOWN_DEFAULT'
        | 'SECRET_REPEATED'
        | 'SECRET_TOO_SHORT'
        | 'SECRET_LOW_ENTROPY';
      message: string;
    }
  | undefined {
  if (fromDefault)
    return {
      code: 'SECRET_DEFAULT',
      message: 'is not set, or set to its default value; a secret needs its own value',
    };
  const normalized = normalize(value);
  if (knownDefaults.has(normalized) || hasPlaceholderMarker(normalized)) {
    return {
      code: 'SECRET_KNOWN_DEFAULT',
      message: 'is a well-known default or placeholder value',
    };
  }
  if (repeatsOneCharacter(value)) {
    return { code: 'SECRET_REPEATED', message: 'repeats a single character' };
  }
  if (characterCount(value) < policy.minLength) {
    return {
      code: 'SECRET_TOO_SHORT',
      message: `is shorter than ${String(policy.minLength)} characters`,
    };
  }
  if (entropyBits(value) < policy.minEntropyBits) {
    return {
      code: 'SECRET_LOW_ENTROPY',
      message: `has an estimated entropy below ${String(policy.minEntropyBits)} bits`,
    };
  }
  return undefined;
}
