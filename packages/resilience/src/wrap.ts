/* eslint-disable @typescript-eslint/prefer-promise-reject-errors -- rejections pass on the work's own errors and the caller's abort reason unchanged, whatever their type */
import type { FallbackPolicy } from './fallback.js';
import type { Link, Work } from './policy.js';
import { NO_CHAIN, RUN } from './policy.js';
import { Scope } from './scope.js';

/** Anything `wrap` accepts: our policies, or any object with the `Policy` port's `execute`. */
export interface WrappablePolicy {
  execute(fn: Work<never>, signal?: AbortSignal): Promise<unknown>;
}

/** The extra type a policy's `execute` may resolve to (a fallback's value), or never. */
export type ExtraResultOf<P> =
  P extends FallbackPolicy<infer R> ? R : P extends WrappedPolicy<infer R> ? R : never;

function isLink(policy: WrappablePolicy): policy is WrappablePolicy & Link {
  return typeof (policy as Partial<Link>)[RUN] === 'function';
}

/** Adapts a foreign policy (the bare `Policy` port) to a chain link. */
function foreignLink(policy: WrappablePolicy): Link {
  return {
    [RUN](fn, scope, chain, index) {
      const link = chain[index];
      try {
        return runForeign(policy, fn, scope, chain, index, link);
      } catch (error) {
        // A hand-written policy may call fn synchronously; execute must still only ever reject.
        return Promise.reject(error);
      }
    },
  };
}

function runForeign(
  policy: WrappablePolicy,
  fn: Work<unknown>,
  scope: Scope,
  chain: readonly Link[],
  index: number,
  link: Link | undefined,
): Promise<unknown> {
  return policy.execute(
    ((context: { signal: AbortSignal }) => {
      // Abort the inner chain when the foreign policy aborts the signal it handed us.
      const inner = scope.child();
      const onAbort = (): void => inner.abort(context.signal.reason);
      if (context.signal !== scope.signal)
        context.signal.addEventListener('abort', onAbort, { once: true });
      const done = (): void => {
        context.signal.removeEventListener('abort', onAbort);
        inner.dispose();
      };
      try {
        const result = link === undefined ? fn(inner) : link[RUN](fn, inner, chain, index + 1);
        return Promise.resolve(result).finally(done);
      } catch (error) {
        done();
        throw error;
      }
    }) as unknown as Work<never>,
    scope.signal,
  );
}

/** Composition of policies, outermost first; itself a policy. */
export class WrappedPolicy<R = never> {
  /** The policies, outermost first. */
  readonly policies: readonly WrappablePolicy[];
  private readonly chain: readonly Link[];

  constructor(policies: readonly WrappablePolicy[]) {
    this.policies = policies;
    this.chain = policies.map((policy) => (isLink(policy) ? policy : foreignLink(policy)));
  }

  /** Runs `fn` through every policy, outermost first. */
  execute<T>(fn: Work<T>, signal?: AbortSignal): Promise<T | R> {
    return this[RUN](fn, Scope.root(signal), NO_CHAIN, 0) as Promise<T | R>;
  }

  /** @internal */
  [RUN](fn: Work<unknown>, scope: Scope, chain: readonly Link[], index: number): Promise<unknown> {
    // A wrap nested in a chain splices its links in front of the rest of the outer chain.
    const links = index < chain.length ? [...this.chain, ...chain.slice(index)] : this.chain;
    const first = links[0];
    if (first === undefined) {
      try {
        return Promise.resolve(fn(scope));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return first[RUN](fn, scope, links, 1);
  }
}

/** Composes policies, outermost first: `wrap(retry(), circuitBreaker(), timeout(5_000))`. */
export function wrap<const P extends readonly WrappablePolicy[]>(
  ...policies: P
): WrappedPolicy<ExtraResultOf<P[number]>> {
  return new WrappedPolicy(policies);
}
