import type { Event } from './events.js';
import { Emitter } from './events.js';
import type { Link, Work } from './policy.js';
import { RUN, runNext } from './policy.js';
import type { ExecuteContext } from './scope.js';
import { Scope } from './scope.js';
import { checkFunction } from './validate.js';
import { NO_CHAIN } from './policy.js';

/** Options of `fallback()`. */
export interface FallbackOptions {
  /** Which errors the fallback replaces. Default: every error, except when the caller's own signal aborted. */
  handles?: (error: unknown) => boolean;
}

/** Computes the fallback value from the error. */
export type FallbackFunction<R> = (error: unknown, context: ExecuteContext) => R | PromiseLike<R>;

/** Fallback policy: resolves to a value (or a function's result) instead of rejecting with a handled error. */
export class FallbackPolicy<R> implements Link {
  private readonly value: R | FallbackFunction<R>;
  private readonly handles: ((error: unknown) => boolean) | undefined;
  private readonly fallbackEmitter = new Emitter<{ error: unknown }>();

  /** Fires each time the fallback replaces an error. */
  readonly onFallback: Event<{ error: unknown }> = this.fallbackEmitter.event;

  constructor(value: R | FallbackFunction<R>, options: FallbackOptions = {}) {
    checkFunction('handles', options.handles);
    this.value = value;
    this.handles = options.handles;
  }

  /** Runs `fn`; on a handled error resolves to the fallback instead. */
  execute<T>(fn: Work<T>, signal?: AbortSignal): Promise<T | R> {
    return this[RUN](fn, Scope.root(signal), NO_CHAIN, 0) as Promise<T | R>;
  }

  /** @internal */
  async [RUN](
    fn: Work<unknown>,
    scope: Scope,
    chain: readonly Link[],
    index: number,
  ): Promise<unknown> {
    try {
      return await runNext(fn, scope, chain, index);
    } catch (error) {
      // A caller who aborted asked for the call to stop, not for a substitute answer.
      if (scope.callerAborted) throw error;
      if (this.handles !== undefined && !this.handles(error)) throw error;
      if (this.fallbackEmitter.active) this.fallbackEmitter.emit({ error });
      const value = this.value;
      return typeof value === 'function'
        ? await (value as FallbackFunction<R>)(error, scope)
        : value;
    }
  }
}

/**
 * Creates a fallback: `fallback([])` or `fallback((error) => cached)`. To fall back to a function
 * value itself, return it from a function: `fallback(() => fn)`.
 */
export function fallback<R>(
  value: R | FallbackFunction<R>,
  options: FallbackOptions = {},
): FallbackPolicy<R> {
  return new FallbackPolicy(value, { ...options });
}
