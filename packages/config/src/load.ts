import { readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';
import * as z from 'zod';
import { ConfigError, type ConfigIssue, type ConfigWarning } from './errors.js';
import { toEnvName } from './env-name.js';
import { assessSecret, Secret, secretState } from './secret.js';

/** A config shape: keys map to zod schemas (one variable each) or to nested shapes (a prefix each). */
export interface Shape {
  readonly [key: string]: z.core.$ZodType | Shape;
}

/** `production` refuses weak secrets; `development` returns them as warnings. */
export type Mode = 'production' | 'development';

type Primitive = string | number | boolean | bigint | symbol | null | undefined;
/** `T` made read-only all the way down (what `Object.freeze` on every level gives). */
export type DeepReadonly<T> = T extends Primitive | Secret | Date | URL | RegExp | ((...parameters: never[]) => unknown)
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
  readonly path: readonly string[];
  readonly env: string;
  readonly schema: z.core.$ZodType;
}

const RESERVED_KEYS = new Set(['warnings']);
const compiled = new WeakMap<Shape, Map<string, readonly Field[]>>();

function isSchema(value: unknown): value is z.core.$ZodType {
  return typeof value === 'object' && value !== null && '_zod' in value;
}

function isPlainObject(value: unknown): value is Shape {
  if (typeof value !== 'object' || value === null) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

function compile(shape: Shape, prefix: string): readonly Field[] {
  let byPrefix = compiled.get(shape);
  const cached = byPrefix?.get(prefix);
  if (cached !== undefined) return cached;
  const fields: Field[] = [];
  const owners = new Map<string, string>();
  const walk = (node: Shape, path: readonly string[], envPrefix: string): void => {
    for (const [key, value] of Object.entries(node)) {
      const fieldPath = [...path, key];
      const dotted = fieldPath.join('.');
      if (path.length === 0 && RESERVED_KEYS.has(key)) {
        throw new ConfigError('SHAPE_INVALID', `Config shape key "${key}" is reserved (the result's ${key} property)`);
      }
      const env = `${envPrefix}${toEnvName(key)}`;
      if (isSchema(value)) {
        const owner = owners.get(env);
        if (owner !== undefined) {
          throw new ConfigError('SHAPE_INVALID', `Config shape keys "${owner}" and "${dotted}" both read ${env}`);
        }
        owners.set(env, dotted);
        fields.push({ path: fieldPath, env, schema: value });
      } else if (isPlainObject(value)) {
        walk(value, fieldPath, `${env}_`);
      } else {
        throw new ConfigError('SHAPE_INVALID', `Config shape key "${dotted}" must be a zod schema or a nested shape object`);
      }
    }
  };
  walk(shape, [], prefix);
  if (byPrefix === undefined) {
    byPrefix = new Map();
    compiled.set(shape, byPrefix);
  }
  byPrefix.set(prefix, fields);
  return fields;
}

/** The mode `NODE_ENV` implies: unknown values (`staging`, `prod`) fail closed to production. */
export function modeFromNodeEnv(nodeEnv: string | undefined): Mode {
  const value = (nodeEnv ?? '').trim().toLowerCase();
  return value === '' || value === 'development' || value === 'dev' || value === 'test' ? 'development' : 'production';
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'unknown error';
}

function readEnvFiles(
  files: readonly string[],
  issues: ConfigIssue[],
): Record<string, string | undefined> {
  const merged: Record<string, string | undefined> = {};
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      if (errorCode(error) !== 'ENOENT') {
        issues.push({ code: 'ENV_FILE_UNREADABLE', path: [], env: file, message: `cannot be read (${errorCode(error)})` });
      }
      continue;
    }
    Object.assign(merged, parseEnv(text));
  }
  return merged;
}

type Raw =
  | { readonly kind: 'value'; readonly value: string }
  | { readonly kind: 'missing'; readonly empty: boolean }
  | { readonly kind: 'issue'; readonly issue: ConfigIssue };

function isBlank(value: string | undefined, emptyIsMissing: boolean): boolean {
  return value === undefined || (emptyIsMissing && value.trim() === '');
}

function readRaw(env: Readonly<Record<string, string | undefined>>, field: Field, emptyIsMissing: boolean): Raw {
  const direct = env[field.env];
  const fileName = `${field.env}_FILE`;
  const filePath = env[fileName];
  const directSet = !isBlank(direct, emptyIsMissing);
  if (filePath !== undefined && filePath.trim() !== '') {
    if (directSet) {
      return {
        kind: 'issue',
        issue: { code: 'FILE_CONFLICT', path: field.path, env: field.env, message: `is set and so is ${fileName}; set only one` },
      };
    }
    let content: string;
    try {
      content = readFileSync(filePath, 'utf8');
    } catch (error) {
      const code = errorCode(error);
      return {
        kind: 'issue',
        issue:
          code === 'ENOENT'
            ? { code: 'FILE_MISSING', path: field.path, env: fileName, message: `names a file that does not exist (${filePath})` }
            : { code: 'FILE_UNREADABLE', path: field.path, env: fileName, message: `names a file that cannot be read (${filePath}: ${code})` },
      };
    }
    // Container secrets and editors end files with one newline that is not part of the value.
    const value = content.replace(/\r?\n$/, '');
    return isBlank(value, emptyIsMissing) ? { kind: 'missing', empty: true } : { kind: 'value', value };
  }
  if (directSet) return { kind: 'value', value: direct as string };
  return { kind: 'missing', empty: direct !== undefined };
}

function redact(message: string, secrets: readonly string[]): string {
  let result = message;
  for (const value of secrets) if (value.length >= 3) result = result.split(value).join('[redacted]');
  return result;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Reflect.ownKeys(value)) deepFreeze((value as Record<PropertyKey, unknown>)[key]);
  }
  return value;
}

function assign(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    let child = node[key] as Record<string, unknown> | undefined;
    if (child === undefined) {
      child = {};
      node[key] = child;
    }
    node = child;
  }
  node[path[path.length - 1] as string] = value;
}

/**
 * Reads and validates every variable of `shape` at once. Returns a deep-frozen, fully typed object
 * (with non-enumerable `warnings`), or throws a `ConfigError` whose `issues` list every problem.
 * No value of any variable appears in errors or warnings.
 */
export function loadConfig<const S extends Shape>(shape: S, options: LoadConfigOptions = {}): Config<S> {
  const prefix = options.prefix ?? '';
  const emptyIsMissing = options.emptyIsMissing ?? true;
  const fields = compile(shape, prefix);
  const issues: ConfigIssue[] = [];
  const warnings: ConfigWarning[] = [];
  const given = options.env ?? process.env;
  const files = options.envFile === undefined ? [] : typeof options.envFile === 'string' ? [options.envFile] : options.envFile;
  const env = files.length === 0 ? given : { ...readEnvFiles(files, issues), ...given };
  const mode = options.mode ?? modeFromNodeEnv(env['NODE_ENV']);
  const secrets: string[] = [];
  const output: Record<string, unknown> = {};

  for (const field of fields) {
    const raw = readRaw(env, field, emptyIsMissing);
    if (raw.kind === 'issue') {
      issues.push(raw.issue);
      continue;
    }
    const input = raw.kind === 'value' ? raw.value : undefined;
    const result = z.safeParse(field.schema, input);
    if (!result.success) {
      if (raw.kind === 'missing') {
        issues.push({ code: 'MISSING', path: field.path, env: field.env, message: raw.empty ? 'is set but empty' : 'is not set' });
      } else {
        for (const issue of result.error.issues) {
          issues.push({
            code: 'INVALID',
            path: [...field.path, ...issue.path.filter((segment) => typeof segment !== 'symbol')],
            env: field.env,
            message: issue.message,
          });
        }
      }
      continue;
    }
    const value: unknown = result.data;
    if (Secret.isInstance(value)) {
      const state = secretState(value);
      const revealed = value.reveal();
      secrets.push(revealed);
      if (input !== undefined) secrets.push(input);
      if (state !== undefined) {
        const weakness = assessSecret(revealed, state.policy, raw.kind === 'missing' || state.fromDefault);
        if (weakness !== undefined) {
          const entry = { code: weakness.code, path: field.path, env: field.env, message: weakness.message };
          if (mode === 'production') issues.push(entry);
          else warnings.push(entry);
        }
      }
    }
    assign(output, field.path, value);
  }

  if (prefix !== '') {
    const known = new Set(fields.flatMap((field) => [field.env, `${field.env}_FILE`]));
    for (const name of Object.keys(env)) {
      if (name.startsWith(prefix) && !known.has(name)) {
        warnings.push({ code: 'UNKNOWN_VARIABLE', path: [], env: name, message: 'is set but not read by the config shape (a typo?)' });
      }
    }
  }

  if (issues.length > 0) {
    const clean = issues.map((issue) => ({ ...issue, message: redact(issue.message, secrets) }));
    throw ConfigError.fromIssues(clean, warnings);
  }
  Object.defineProperty(output, 'warnings', { value: Object.freeze(warnings), enumerable: false });
  return deepFreeze(output) as Config<S>;
}
