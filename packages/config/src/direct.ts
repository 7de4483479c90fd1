import type * as z from 'zod';

/** One problem a direct parser found: the same message and path its zod pipe reports. */
export interface DirectIssue {
  readonly message: string;
  readonly path: readonly (string | number)[];
}

/** Runs a direct parse inside a zod transform: the issues it finds become the context's issues. */
export function withDirectIssues<T>(
  context: z.core.$RefinementCtx,
  parse: (issues: DirectIssue[]) => T,
): T {
  const issues: DirectIssue[] = [];
  const value = parse(issues);
  for (const issue of issues)
    context.issues.push({
      code: 'custom',
      message: issue.message,
      path: [...issue.path],
      input: undefined,
    });
  return value;
}

/** Returned by a direct parser that cannot decide alone: loadConfig then runs the zod schema. */
export const USE_SCHEMA: unique symbol = Symbol('use the schema');

/**
 * Parses one environment string exactly as the schema it is registered for would, without
 * running zod's pipe machinery: pushes its issues into `issues` and returns the value (ignored
 * when it pushed any), or returns {@link USE_SCHEMA}. Only for string input; `undefined` still
 * goes through zod.
 */
export type DirectParse = (raw: string, issues: DirectIssue[]) => unknown;

// Keyed by the schema object this package built: a clone (`.optional()`, `.refine()`,
// `.describe()`, `devDefault`) or a schema from another copy of the package is not found here,
// so it runs through zod as before.
const parsers = new WeakMap<object, DirectParse>();

/** Registers the direct parser of a schema built by this package. Not public. */
export function registerDirect<S extends object>(schema: S, parse: DirectParse): S {
  parsers.set(schema, parse);
  return schema;
}

/** The direct parser of `schema`, if this package built it. Not public. */
export function directOf(schema: object): DirectParse | undefined {
  return parsers.get(schema);
}

interface ZodInternals {
  readonly def: {
    readonly type?: unknown;
    readonly checks?: readonly unknown[];
    readonly coerce?: unknown;
    readonly innerType?: unknown;
  };
  readonly traits: ReadonlySet<string>;
  readonly values?: ReadonlySet<unknown> | undefined;
}

const identity: DirectParse = (raw) => raw;

/**
 * The direct parser of `schema` for a string input: this package's own schemas, and the plain zod
 * schemas whose result on a string is certain without zod: `z.string()` with no checks (the string
 * itself), `z.enum`/`z.literal` (the string when it is one of the values; anything else runs zod,
 * for zod's own message), and `.optional()`, `.nullable()`, `.default()` and `.prefault()` with
 * no checks around one of these (a string passes straight to the inner schema). Everything else runs zod. Not public.
 */
export function directFor(schema: object): DirectParse | undefined {
  const own = parsers.get(schema);
  if (own !== undefined) return own;
  const zod = (schema as { _zod?: ZodInternals })._zod;
  if (zod === undefined || zod.traits.has('$ZodCheck') || (zod.def.checks?.length ?? 0) > 0)
    return undefined;
  const type = zod.def.type;
  if (type === 'string') return zod.def.coerce === true ? undefined : identity;
  if (type === 'enum' || type === 'literal') {
    const values = zod.values;
    if (values === undefined) return undefined;
    return (raw) => (values.has(raw) ? raw : USE_SCHEMA);
  }
  const innerType = zod.def.innerType;
  if (typeof innerType !== 'object' || innerType === null) return undefined;
  if (type === 'optional' || type === 'nullable' || type === 'prefault')
    return directFor(innerType);
  if (type === 'default') {
    const inner = directFor(innerType);
    if (inner === undefined) return undefined;
    // `.default()` also replaces an `undefined` result of its inner schema: leave that to zod.
    return (raw, issues) => {
      const value = inner(raw, issues);
      return value === undefined ? USE_SCHEMA : value;
    };
  }
  return undefined;
}
