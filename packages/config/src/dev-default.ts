import * as z from 'zod';
import { directOf, registerDirect } from './direct.js';

const devDefaults = new WeakMap<object, string>();

/**
 * A value used for `schema` only outside production, as if the variable were set to `value`
 * (so it is parsed like one). In production the variable is required. Returns a copy of
 * `schema`; the original is not marked.
 */
export function devDefault<S extends z.core.$ZodType>(schema: S, value: string): S {
  const copy = z.core.clone(schema);
  devDefaults.set(copy, value);
  // The copy parses exactly as the original: keep its direct parser, if it has one.
  const direct = directOf(schema);
  if (direct !== undefined) registerDirect(copy, direct);
  return copy;
}

/** The development default registered for a shape entry, if any. Not public. */
export function devDefaultOf(schema: object): string | undefined {
  return devDefaults.get(schema);
}

const devOptionals = new WeakSet<object>();

/**
 * `schema` made optional outside production only: in development a missing variable gives
 * `undefined`; in production it is required. For fallbacks that must never reach production
 * (an embedded database, a local outbox instead of a mail relay).
 */
export function devOptional<S extends z.core.$ZodType>(schema: S): z.ZodOptional<S> {
  const optional = z.optional(schema);
  devOptionals.add(optional);
  return optional;
}

/** Whether a shape entry was made with `devOptional`. Not public. */
export function isDevOptional(schema: object): boolean {
  return devOptionals.has(schema);
}
