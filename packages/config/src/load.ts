import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { parseEnv, types } from 'node:util';
import * as z from 'zod';
import { ConfigError, type ConfigIssue, type ConfigWarning } from './errors.js';
import { devDefaultOf, isDevOptional } from './dev-default.js';
import { type DirectIssue, type DirectParse, directFor, USE_SCHEMA } from './direct.js';
import { toEnvName } from './env-name.js';
import { assessSecret, matchesDefault, Secret, secretState } from './secret.js';

/** A config shape: keys map to zod schemas (one variable each) or to nested shapes (a prefix each). */
export interface Shape {
  readonly [key: string]: z.core.$ZodType | Shape;
}

/** `production` refuses weak secrets; `development` returns them as warnings. */
export type Mode = 'production' | 'development';

type Primitive = string | number | boolean | bigint | symbol | null | undefined;
/** `T` made read-only all the way down (what `Object.freeze` on every level gives). */
export type DeepReadonly<T> = T extends
  | Primitive
  | Secret
  | Date
  | URL
  | RegExp
  | ArrayBufferView
  | ArrayBuffer
  | ((...parameters: never[]) => unknown)
  ? T
  : T extends readonly (infer Item)[]
    ? readonly DeepReadonly<Item>[]
    : { readonly [K in keyof T]: DeepReadonly<T[K]> };

/** The typed values of a shape. */
export type InferShape<S extends Shape> = {
  readonly [K in keyof S]: S[K] extends z.core.$ZodType
    ? DeepReadonly<z.output<S[K]>>
    : S[K] extends Shape
      ? InferShape<S[K]>
      : never;
};

/** What `loadConfig` returns: the frozen values, plus non-enumerable `warnings`. */
export type Config<S extends Shape> = InferShape<S> & {
  /** Development-mode secret weaknesses and unknown prefixed variables. Never contains a value. */
  readonly warnings: readonly ConfigWarning[];
};

/** Options of {@link loadConfig}. */
export interface LoadConfigOptions {
  /** Variables to read. Default: `process.env` (never modified). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Strictness. Default: `production` when `NODE_ENV` is set to anything but `development`, `dev` or `test` (or empty); else `development`. */
  mode?: Mode;
  /** Prefix of every variable name, e.g. `APP_` reads `APP_SMTP_PORT`. Also enables warnings for unknown `APP_*` variables. Default: `''`. */
  prefix?: string;
  /** `.env` file(s) to read with Node's `util.parseEnv`; later files override earlier ones, `env` overrides all; missing files are skipped. Default: none. */
  envFile?: string | readonly string[];
  /** Treat a variable set to an empty or all-whitespace string as not set, so defaults apply. Default: true. */
  emptyIsMissing?: boolean;
}

interface Field {
  readonly kind: 'field';
  readonly path: readonly string[];
  readonly env: string;
  readonly fileEnv: string;
  readonly schema: z.core.$ZodType;
  /** The schema's own parser when this package built it: called instead of zod's pipe for a set variable. */
  readonly direct: DirectParse | undefined;
  /** Input used outside production when the variable is not set (`devDefault`). */
  readonly devDefault: string | undefined;
  /** Optional outside production only (`devOptional`). */
  readonly devOptional: boolean;
  /** The schema's zod description, added to "is not set" messages. */
  readonly description: string | undefined;
  /** Index of the object (among the plan's objects) the value goes into, and its key there. */
  readonly group: number;
  readonly key: string;
  /** Position among the plan's fields (and in the values handed to `assemble`). */
  readonly index: number;
}

interface Group {
  readonly kind: 'group';
  readonly group: number;
  readonly parent: number;
  readonly key: string;
}

/** One object of the shape as it was compiled: its own keys in order and their values. */
interface Snapshot {
  readonly node: Shape;
  readonly keys: readonly string[];
  readonly values: readonly unknown[];
}

/** A shape compiled once: steps in shape order, so the result keeps the shape's key order. */
interface Plan {
  /** Every object of the shape, to tell a cached plan from a shape changed since. */
  readonly snapshots: readonly Snapshot[];
  readonly steps: readonly (Field | Group)[];
  readonly fields: readonly Field[];
  readonly groups: number;
  /**
   * Builds the result from the fields' values in one object literal per group (nested groups
   * frozen, the top level not yet): generated once per plan, it gives each result a fixed layout
   * instead of 30 computed-key stores. `undefined` where code generation is disallowed (CSP,
   * `--disallow-code-generation-from-strings`): loadConfig then adds the keys one by one.
   */
  readonly assemble: Assemble | undefined;
}

type Assemble = (
  values: readonly unknown[],
  freeze: typeof Object.freeze,
) => Record<string, unknown>;

/** The literal of `group`: its keys in shape order, nested groups inline and frozen. */
function literalOf(steps: readonly (Field | Group)[], group: number): string {
  const members: string[] = [];
  for (const step of steps) {
    if (step.kind === 'field' ? step.group !== group : step.parent !== group) continue;
    // JSON text is a valid JS string literal; `__proto__` computed, so it is a key, not the prototype.
    const name =
      step.key === '__proto__' ? `[${JSON.stringify(step.key)}]` : JSON.stringify(step.key);
    members.push(
      step.kind === 'field'
        ? `${name}: v[${String(step.index)}]`
        : `${name}: f(${literalOf(steps, step.group)})`,
    );
  }
  return `{${members.join(', ')}}`;
}

/** `object[key] = value`, except that `__proto__` becomes an own key instead of setting the prototype. */
function setKey(object: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__')
    Object.defineProperty(object, key, {
      value,
      writable: true,
      enumerable: true,
      configurable: true,
    });
  else object[key] = value;
}

function generateAssemble(steps: readonly (Field | Group)[]): Assemble | undefined {
  try {
    // Only keys (as JSON string literals) and indexes reach the source; no value ever does.
    // eslint-disable-next-line @typescript-eslint/no-implied-eval -- generated from the shape's keys only, once per shape; falls back to plain stores where disallowed
    return new Function('v', 'f', `"use strict"; return ${literalOf(steps, 0)};`) as Assemble;
  } catch {
    return undefined;
  }
}

const RESERVED_KEYS = new Set(['warnings']);
const compiled = new WeakMap<Shape, Map<string, Plan>>();

function isSchema(value: unknown): value is z.core.$ZodType {
  return typeof value === 'object' && value !== null && '_zod' in value;
}

function isPlainObject(value: unknown): value is Shape {
  if (typeof value !== 'object' || value === null) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/**
 * Whether `plan` still describes its shape: same keys in the same order, same schema or nested
 * object under each. A shape changed after its first load (a key added, removed or replaced) is
 * compiled again instead of being read with a stale plan. One pass over the keys, no allocation.
 */
function isCurrent(plan: Plan): boolean {
  for (const { node, keys, values } of plan.snapshots) {
    let index = 0;
    for (const key in node) {
      if (key !== keys[index] || node[key] !== values[index]) return false;
      index += 1;
    }
    if (index !== keys.length) return false;
  }
  return true;
}

function compile(shape: Shape, prefix: string): Plan {
  let byPrefix = compiled.get(shape);
  const cached = byPrefix?.get(prefix);
  if (cached !== undefined && isCurrent(cached)) return cached;
  const snapshots: Snapshot[] = [];
  const steps: (Field | Group)[] = [];
  const fields: Field[] = [];
  const owners = new Map<string, string>();
  let groups = 1;
  const walk = (node: Shape, path: readonly string[], envPrefix: string, group: number): void => {
    const entries = Object.entries(node);
    snapshots.push({
      node,
      keys: entries.map(([key]) => key),
      values: entries.map(([, value]) => value),
    });
    for (const [key, value] of entries) {
      const fieldPath = [...path, key];
      const dotted = fieldPath.join('.');
      if (path.length === 0 && RESERVED_KEYS.has(key)) {
        throw new ConfigError(
          'SHAPE_INVALID',
          `Config shape key "${key}" is reserved (the result's ${key} property)`,
        );
      }
      const env = `${envPrefix}${toEnvName(key)}`;
      if (isSchema(value)) {
        const owner = owners.get(env);
        if (owner !== undefined) {
          throw new ConfigError(
            'SHAPE_INVALID',
            `Config shape keys "${owner}" and "${dotted}" both read ${env}`,
          );
        }
        owners.set(env, dotted);
        const description = (value as { description?: unknown }).description;
        const field: Field = {
          kind: 'field',
          path: fieldPath,
          env,
          fileEnv: `${env}_FILE`,
          schema: value,
          direct: directFor(value),
          devDefault: devDefaultOf(value),
          devOptional: isDevOptional(value),
          description: typeof description === 'string' ? description : undefined,
          group,
          key,
          index: fields.length,
        };
        steps.push(field);
        fields.push(field);
      } else if (isPlainObject(value)) {
        const child = groups;
        groups += 1;
        steps.push({ kind: 'group', group: child, parent: group, key });
        walk(value, fieldPath, `${env}_`, child);
      } else {
        throw new ConfigError(
          'SHAPE_INVALID',
          `Config shape key "${dotted}" must be a zod schema or a nested shape object`,
        );
      }
    }
  };
  walk(shape, [], prefix, 0);
  const plan: Plan = { snapshots, steps, fields, groups, assemble: generateAssemble(steps) };
  if (byPrefix === undefined) {
    byPrefix = new Map();
    compiled.set(shape, byPrefix);
  }
  byPrefix.set(prefix, plan);
  return plan;
}

/** The mode `NODE_ENV` implies: unknown values (`staging`, `prod`) fail closed to production. */
export function modeFromNodeEnv(nodeEnv: string | undefined): Mode {
  const value = (nodeEnv ?? '').trim().toLowerCase();
  return value === '' || value === 'development' || value === 'dev' || value === 'test'
    ? 'development'
    : 'production';
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'unknown error';
}

/** Largest `NAME_FILE` or `.env` file read, in bytes: a secret or env file is never this big. */
export const MAX_FILE_BYTES = 1_048_576;

/**
 * Reads a small regular file. Devices, FIFOs and sockets (`/dev/urandom`, a pipe) would block
 * start-up or never end, and huge files are mistakes: both are refused with a code instead.
 */
function readSmallFile(path: string): { text: string } | { error: string } {
  let descriptor: number;
  try {
    // Non-blocking, so opening a FIFO with no writer returns at once instead of hanging start-up.
    descriptor = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (error) {
    return { error: errorCode(error) };
  }
  try {
    const stats = fstatSync(descriptor);
    if (stats.isDirectory()) return { error: 'EISDIR' };
    if (!stats.isFile()) return { error: 'not a regular file' };
    if (stats.size > MAX_FILE_BYTES)
      return { error: `larger than ${String(MAX_FILE_BYTES)} bytes` };
    const buffer = Buffer.alloc(stats.size);
    let read = 0;
    while (read < stats.size) {
      const count = readSync(descriptor, buffer, read, stats.size - read, read);
      if (count === 0) break;
      read += count;
    }
    return { text: buffer.toString('utf8', 0, read) };
  } catch (error) {
    return { error: errorCode(error) };
  } finally {
    closeSync(descriptor);
  }
}

function readEnvFiles(
  files: readonly string[],
  issues: ConfigIssue[],
): Record<string, string | undefined> {
  const merged: Record<string, string | undefined> = {};
  for (const file of files) {
    const result = readSmallFile(file);
    if ('error' in result) {
      if (result.error !== 'ENOENT') {
        issues.push({
          code: 'ENV_FILE_UNREADABLE',
          path: [],
          env: file,
          message: `cannot be read (${result.error})`,
        });
      }
      continue;
    }
    Object.assign(merged, parseEnv(result.text));
  }
  return merged;
}

const NOT_SET = Symbol('not set');
const EMPTY = Symbol('empty');
/** A value, the reason it is absent, or an issue (file problems). */
type Raw = string | typeof NOT_SET | typeof EMPTY | ConfigIssue;

// Whitespace as String.prototype.trim sees it, tested without allocating a trimmed copy.
const WHITESPACE = /^[\s\uFEFF\xA0]*$/;

function isBlank(value: string, emptyIsMissing: boolean): boolean {
  if (value === '') return true;
  if (!emptyIsMissing) return false;
  const first = value.charCodeAt(0);
  // Most values start with a visible character: skip the regex for them.
  if (first > 32 && first !== 0xa0 && first < 0x1680) return false;
  return WHITESPACE.test(value);
}

function readFromFile(field: Field, filePath: string, emptyIsMissing: boolean): Raw {
  const result = readSmallFile(filePath);
  if ('error' in result) {
    return result.error === 'ENOENT'
      ? {
          code: 'FILE_MISSING',
          path: field.path,
          env: field.fileEnv,
          message: `names a file that does not exist (${filePath})`,
        }
      : {
          code: 'FILE_UNREADABLE',
          path: field.path,
          env: field.fileEnv,
          message: `names a file that cannot be read (${filePath}: ${result.error})`,
        };
  }
  // Container secrets and editors end files with one newline that is not part of the value.
  const value = result.text.replace(/\r?\n$/, '');
  return isBlank(value, emptyIsMissing) ? EMPTY : value;
}

/**
 * Whether `env` may hold a `NAME_FILE` variable. For an ordinary object, one pass over its
 * enumerable keys (cheaper than one failed lookup per variable); `process.env` and proxies, whose
 * keys may be costly to list or incomplete, are always looked up name by name.
 */
function mayHaveFiles(env: Readonly<Record<string, string | undefined>>): boolean {
  if (env === process.env || types.isProxy(env)) return true;
  for (const name in env) {
    // `E` first: most names do not end in it, so endsWith rarely runs.
    if (name.charCodeAt(name.length - 1) === 69 && name.endsWith('_FILE')) return true;
  }
  return false;
}

function readRaw(
  env: Readonly<Record<string, string | undefined>>,
  field: Field,
  emptyIsMissing: boolean,
  files: boolean,
): Raw {
  const direct = env[field.env];
  const directSet =
    direct !== undefined && (direct === '' ? !emptyIsMissing : !isBlank(direct, emptyIsMissing));
  const filePath = files ? env[field.fileEnv] : undefined;
  if (filePath !== undefined && !isBlank(filePath, true)) {
    if (directSet) {
      return {
        code: 'FILE_CONFLICT',
        path: field.path,
        env: field.env,
        message: `is set and so is ${field.fileEnv}; set only one`,
      };
    }
    return readFromFile(field, filePath, emptyIsMissing);
  }
  if (directSet) return direct;
  return direct === undefined ? NOT_SET : EMPTY;
}

function redact(message: string, secrets: readonly string[]): string {
  let result = message;
  for (const value of secrets)
    if (value.length >= 3) result = result.split(value).join('[redacted]');
  return result;
}

/** Whether zod threw because a schema went asynchronous (from any copy of zod). */
function isAsyncParse(error: unknown): boolean {
  return (
    error instanceof z.core.$ZodAsyncError ||
    (typeof error === 'object' &&
      error !== null &&
      (error as { constructor?: { name?: unknown } }).constructor?.name === '$ZodAsyncError')
  );
}

function asynchronousSchema(field: Field): ConfigError {
  return new ConfigError(
    'SHAPE_INVALID',
    `Config shape key "${field.path.join('.')}" has an asynchronous schema; loadConfig is synchronous`,
  );
}

/** The issue for a schema that threw (a transform calling `JSON.parse`): its name, never its message, which may quote the value. */
function thrownIssue(field: Field, error: unknown): ConfigIssue {
  const name = error instanceof Error ? error.name : undefined;
  const shown = name !== undefined && /^[A-Za-z][A-Za-z0-9]{0,63}$/.test(name) ? name : 'an error';
  return {
    code: 'INVALID',
    path: field.path,
    env: field.env,
    message: `could not be parsed (the schema threw ${shown})`,
  };
}

const WORD_CHARACTER = /[\p{L}\p{N}]/u;

/**
 * `message` with `raw` (trimmed, 3 characters or more) replaced by `[redacted]` where it stands
 * on its own: a custom message that echoes the value loses it, while a word that merely contains
 * it (`inf` in zod's `expected one of "info"`) is kept.
 */
function redactInput(message: string, raw: string): string {
  const value = raw.trim();
  if (value.length < 3) return message;
  let result = '';
  let from = 0;
  for (let at = message.indexOf(value); at !== -1; at = message.indexOf(value, at + 1)) {
    if (at < from) continue;
    const before = at > 0 ? message[at - 1]! : '';
    const after = message[at + value.length] ?? '';
    if (WORD_CHARACTER.test(before) || WORD_CHARACTER.test(after)) continue;
    result += `${message.slice(from, at)}[redacted]`;
    from = at + value.length;
  }
  return from === 0 ? message : result + message.slice(from);
}

/** The string a `.prefault()` at the top of `schema` stands in for a missing variable, if any. */
function prefaultInputOf(schema: z.core.$ZodType): string | undefined {
  const def = (schema as { _zod?: { def?: { type?: unknown; defaultValue?: unknown } } })._zod?.def;
  if (def?.type !== 'prefault') return undefined;
  const value = def.defaultValue;
  return typeof value === 'string' ? value : undefined;
}

function deepFreeze(value: unknown): void {
  // Typed arrays (a Buffer decoded from base64) cannot be frozen: Object.freeze throws on them.
  if (
    typeof value === 'object' &&
    value !== null &&
    !Object.isFrozen(value) &&
    !ArrayBuffer.isView(value)
  ) {
    Object.freeze(value);
    for (const key of Reflect.ownKeys(value))
      deepFreeze((value as Record<PropertyKey, unknown>)[key]);
  }
}

function pathOf(field: Field, issuePath: readonly unknown[] | undefined): (string | number)[] {
  const path: (string | number)[] = [...field.path];
  for (const segment of issuePath ?? []) {
    const key =
      typeof segment === 'object' && segment !== null ? (segment as { key: unknown }).key : segment;
    if (typeof key === 'string' || typeof key === 'number') path.push(key);
  }
  return path;
}

// What zod reports when `undefined` reaches a schema with no default: a type, enum/literal or union miss.
const ABSENCE_CODES = new Set(['invalid_type', 'invalid_value', 'invalid_union']);

function isAbsenceIssue(issue: { readonly path?: readonly unknown[] | undefined }): boolean {
  const code = (issue as { code?: unknown }).code;
  return (
    typeof code === 'string' &&
    ABSENCE_CODES.has(code) &&
    (issue.path === undefined || issue.path.length === 0)
  );
}

function missingMessage(field: Field, empty: boolean): string {
  let message = empty ? 'is set but empty' : 'is not set';
  if (field.devDefault !== undefined)
    message += ' (its development default does not apply in production)';
  if (field.devOptional) message += ' (it is optional in development only)';
  if (field.description !== undefined) message += `: ${field.description}`;
  return message;
}

/**
 * Reads and validates every variable of `shape` at once. Returns a deep-frozen, fully typed object
 * (with non-enumerable `warnings`), or throws a `ConfigError` whose `issues` list every problem.
 * No value of any variable appears in errors or warnings.
 */
export function loadConfig<const S extends Shape>(
  shape: S,
  options: LoadConfigOptions = {},
): Config<S> {
  const prefix = options.prefix ?? '';
  const emptyIsMissing = options.emptyIsMissing ?? true;
  const plan = compile(shape, prefix);
  const issues: ConfigIssue[] = [];
  const warnings: ConfigWarning[] = [];
  const given = options.env ?? process.env;
  const files =
    options.envFile === undefined
      ? []
      : typeof options.envFile === 'string'
        ? [options.envFile]
        : options.envFile;
  const env = files.length === 0 ? given : { ...readEnvFiles(files, issues), ...given };
  const fileLookups = mayHaveFiles(env);
  const mode = options.mode ?? modeFromNodeEnv(env['NODE_ENV']);
  const secrets: string[] = [];
  const assemble = plan.assemble;
  const values: unknown[] = assemble === undefined ? [] : new Array<unknown>(plan.fields.length);
  let output: Record<string, unknown> = {};
  const objects: Record<string, unknown>[] = [output];
  const leafIssues: DirectIssue[] = [];

  for (const step of plan.steps) {
    if (step.kind === 'group') {
      if (assemble !== undefined) continue;
      const child: Record<string, unknown> = {};
      objects[step.group] = child;
      setKey(objects[step.parent]!, step.key, child);
      continue;
    }
    const raw = readRaw(env, step, emptyIsMissing, fileLookups);
    if (typeof raw === 'object') {
      issues.push(raw);
      continue;
    }
    if (typeof raw !== 'string' && step.devOptional && mode === 'production') {
      issues.push({
        code: 'MISSING',
        path: step.path,
        env: step.env,
        message: missingMessage(step, raw === EMPTY),
      });
      continue;
    }
    const fromDevDefault =
      typeof raw !== 'string' && step.devDefault !== undefined && mode !== 'production';
    const input = typeof raw === 'string' ? raw : fromDevDefault ? step.devDefault : undefined;
    let value: unknown = USE_SCHEMA;
    if (input !== undefined && step.direct !== undefined) {
      try {
        value = step.direct(input, leafIssues);
      } catch (error) {
        // An async list item or secret format: a shape error. Anything else threw on this value.
        if (isAsyncParse(error)) throw asynchronousSchema(step);
        leafIssues.length = 0;
        issues.push(thrownIssue(step, error));
        continue;
      }
      if (leafIssues.length > 0) {
        for (const issue of leafIssues) {
          issues.push({
            code: 'INVALID',
            path: issue.path.length === 0 ? step.path : [...step.path, ...issue.path],
            env: step.env,
            message: issue.message,
          });
        }
        leafIssues.length = 0;
        continue;
      }
    }
    if (value === USE_SCHEMA) {
      // zod's own synchronous parse: an async schema or a throwing transform throws here, where
      // Standard Schema's validate would turn both into a rejected promise (unhandled, with the
      // error's message, which may quote the value).
      let result: z.ZodSafeParseResult<unknown>;
      try {
        result = z.safeParse(step.schema, input);
      } catch (error) {
        if (isAsyncParse(error)) throw asynchronousSchema(step);
        issues.push(thrownIssue(step, error));
        continue;
      }
      if (!result.success) {
        // Missing means the schema failed on the absence itself, not on a default it supplied.
        const absent = input === undefined && result.error.issues.every(isAbsenceIssue);
        if (absent) {
          issues.push({
            code: 'MISSING',
            path: step.path,
            env: step.env,
            message: missingMessage(step, raw === EMPTY),
          });
        } else {
          for (const issue of result.error.issues) {
            issues.push({
              code: 'INVALID',
              path: pathOf(step, issue.path),
              env: step.env,
              // A refinement's own message may echo the value (a secret's included).
              message: input === undefined ? issue.message : redactInput(issue.message, input),
            });
          }
        }
        continue;
      }
      value = result.data;
    }
    if (typeof value === 'object' && value !== null) {
      const check = (secret: Secret, path: readonly (string | number)[]): void => {
        const state = secretState(secret);
        secrets.push(state.value);
        if (input !== undefined && input !== state.value) secrets.push(input);
        // Also a default when set explicitly to the development default or the `.prefault()`.
        const known = step.devDefault ?? prefaultInputOf(step.schema);
        const weakness = assessSecret(
          state.value,
          state.policy,
          input === undefined ||
            fromDevDefault ||
            state.fromDefault ||
            (known !== undefined && matchesDefault(state.value, known)),
        );
        if (weakness !== undefined) {
          const entry = { code: weakness.code, path, env: step.env, message: weakness.message };
          if (mode === 'production') issues.push(entry);
          else warnings.push(entry);
        }
      };
      if (Secret.isInstance(value)) {
        check(value, step.path);
      } else {
        // A list of secrets (`list(secret())`) gets the same checks, item by item.
        if (Array.isArray(value)) {
          value.forEach((item: unknown, index) => {
            if (Secret.isInstance(item)) check(item, [...step.path, index]);
          });
        }
        deepFreeze(value);
      }
    }
    if (assemble === undefined) setKey(objects[step.group]!, step.key, value);
    else values[step.index] = value;
  }

  if (prefix !== '') {
    const known = new Set(plan.fields.flatMap((field) => [field.env, field.fileEnv]));
    for (const name of Object.keys(env)) {
      if (name.startsWith(prefix) && !known.has(name)) {
        warnings.push({
          code: 'UNKNOWN_VARIABLE',
          path: [],
          env: name,
          message: 'is set but not read by the config shape (a typo?)',
        });
      }
    }
  }

  if (issues.length > 0) {
    const clean = issues.map((issue) => ({ ...issue, message: redact(issue.message, secrets) }));
    throw ConfigError.fromIssues(clean, warnings);
  }
  if (assemble !== undefined) output = assemble(values, Object.freeze);
  Object.defineProperty(output, 'warnings', { value: Object.freeze(warnings), enumerable: false });
  if (assemble === undefined) for (const object of objects) Object.freeze(object);
  else Object.freeze(output);
  return output as Config<S>;
}
