import * as z from 'zod';
import { directOf, registerDirect } from './direct.js';

// Registry symbols, not module-local maps: a schema marked by another copy of this package (its
// ESM and CJS builds, or two versions) is still recognised, so production never treats a
// development-only fallback as an ordinary optional or default.
const DEV_DEFAULT = Symbol.for('postern.config.devDefault');
const DEV_OPTIONAL = Symbol.for('postern.config.devOptional');

function mark(schema: object, key: symbol, value: unknown): void {
  Object.defineProperty(schema, key, { value, enumerable: false });
}

function ownMark(schema: object, key: symbol): unknown {
  return Object.prototype.hasOwnProperty.call(schema, key)
    ? (schema as Record<symbol, unknown>)[key]
    : undefined;
}

/**
 * A value used for `schema` only outside production, as if the variable were set to `value`
 * (so it is parsed like one). In production the variable is required. Returns a copy of
 * `schema`; the original is not marked.
 */
export function devDefault<S extends z.core.$ZodType>(schema: S, value: string): S {
  const copy = z.core.clone(schema);
  mark(copy, DEV_DEFAULT, value);
  // The copy parses exactly as the original: keep its direct parser, if it has one.
  const direct = directOf(schema);
  if (direct !== undefined) registerDirect(copy, direct);
  return copy;
}

/** The development default registered for a shape entry, if any. Not public. */
export function devDefaultOf(schema: object): string | undefined {
  const value = ownMark(schema, DEV_DEFAULT);
  return typeof value === 'string' ? value : undefined;
}

/**
 * `schema` made optional outside production only: in development a missing variable gives
 * `undefined`; in production it is required. For fallbacks that must never reach production
 * (an embedded database, a local outbox instead of a mail relay).
 */
export function devOptional<S extends z.core.$ZodType>(schema: S): z.ZodOptional<S> {
  const optional = z.optional(schema);
  mark(optional, DEV_OPTIONAL, true);
  return optional;
}

/** Whether a shape entry was made with `devOptional`. Not public. */
export function isDevOptional(schema: object): boolean {
  return ownMark(schema, DEV_OPTIONAL) === true;
}
