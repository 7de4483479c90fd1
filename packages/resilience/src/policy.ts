/* eslint-disable @typescript-eslint/prefer-promise-reject-errors -- rejections pass on the work's own errors and the caller's abort reason unchanged, whatever their type */
import type { ExecuteContext } from './scope.js';
import { Scope } from './scope.js';

/** The work a policy runs: receives `{ signal, attempt }`, returns a value or a promise. */
export type Work<T> = (context: ExecuteContext) => PromiseLike<T> | T;

/** The `Policy` port: anything with this shape can wrap a call (ours, or a hand-written object). */
export interface Policy {
  execute<T>(fn: Work<T>, signal?: AbortSignal): Promise<T>;
}

/** A policy whose `execute` may resolve to an extra type `R` (a fallback's value). */
export interface PolicyOf<R> {
  execute<T>(fn: Work<T>, signal?: AbortSignal): Promise<T | R>;
}

/** @internal Runs one link of a chain; policies built here skip the public `execute` when wrapped. */
export const RUN: unique symbol = Symbol('postern.resilience.run');

/** @internal */
export interface Link {
  [RUN](fn: Work<unknown>, scope: Scope, chain: readonly Link[], index: number): Promise<unknown>;
}

/** @internal Runs the next link of `chain`, or the work itself after the last one. */
export function runNext(
  fn: Work<unknown>,
  scope: Scope,
  chain: readonly Link[],
  index: number,
): unknown {
  const link = chain[index];
  return link === undefined ? fn(scope) : link[RUN](fn, scope, chain, index + 1);
}

/** @internal */
export const NO_CHAIN: readonly Link[] = [];

/** @internal Calls `fn` so that a synchronous throw becomes a rejection. */
export function invoke(
  fn: Work<unknown>,
  scope: Scope,
  chain: readonly Link[],
  index: number,
): Promise<unknown> {
  try {
    return Promise.resolve(runNext(fn, scope, chain, index));
  } catch (error) {
    return Promise.reject(error);
  }
}

/** @internal Shared public `execute` of every policy in this package. */
export abstract class BasePolicy implements Link {
  abstract [RUN](
    fn: Work<unknown>,
    scope: Scope,
    chain: readonly Link[],
    index: number,
  ): Promise<unknown>;

  /** Runs `fn` under this policy; `signal` aborts the call and is passed on as `context.signal`. */
  execute<T>(fn: Work<T>, signal?: AbortSignal): Promise<T> {
    return this[RUN](fn, Scope.root(signal), NO_CHAIN, 0) as Promise<T>;
  }
}
