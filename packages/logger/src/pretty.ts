import { createRequire } from 'node:module';

/** Turns one JSON log line into a human-readable line (pino-pretty's `prettyFactory` result). */
export type Prettifier = (line: string) => string;

/** What {@link loadPretty} found: a prettifier, or why there is none. */
export type PrettyLoadResult =
  | { readonly ok: true; readonly prettify: Prettifier }
  | {
      readonly ok: false;
      readonly reason: 'PRETTY_NOT_INSTALLED' | 'PRETTY_LOAD_FAILED';
      readonly detail: string;
    };

/** A `require` function; tests pass one that fails to prove the fallback. */
export type RequireFunction = (id: string) => unknown;

interface PrettyModule {
  prettyFactory(options: Record<string, unknown>): Prettifier;
}

function isPrettyModule(value: unknown): value is PrettyModule {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { prettyFactory?: unknown }).prettyFactory === 'function'
  );
}

/** Resolves `pino-pretty` next to this package, the way an optional peer must be found. */
export function defaultRequire(): RequireFunction {
  return createRequire(import.meta.url);
}

/**
 * Loads pino-pretty's synchronous `prettyFactory` if it resolves. Never throws: a missing module
 * or one that fails to load gives `{ ok: false }` and the caller writes JSON instead. The
 * prettifier runs in-process, so there is no worker-thread transport target to resolve (the
 * "unable to determine transport target" failure of `transport: { target: 'pino-pretty' }`).
 */
export function loadPretty(
  requireFunction: RequireFunction,
  options: { colorize: boolean },
): PrettyLoadResult {
  let loaded: unknown;
  try {
    loaded = requireFunction('pino-pretty');
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    if (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') {
      return { ok: false, reason: 'PRETTY_NOT_INSTALLED', detail: 'pino-pretty is not installed' };
    }
    return {
      ok: false,
      reason: 'PRETTY_LOAD_FAILED',
      detail: `pino-pretty failed to load: ${typeof code === 'string' ? code : 'unknown error'}`,
    };
  }
  if (!isPrettyModule(loaded)) {
    return {
      ok: false,
      reason: 'PRETTY_LOAD_FAILED',
      detail: 'pino-pretty has no prettyFactory export',
    };
  }
  try {
    const prettify = loaded.prettyFactory({ colorize: options.colorize, sync: true });
    return { ok: true, prettify };
  } catch (error) {
    return {
      ok: false,
      reason: 'PRETTY_LOAD_FAILED',
      detail: `pino-pretty failed to start: ${(error as Error).name}`,
    };
  }
}
