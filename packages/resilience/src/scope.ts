/** What every policy hands to the work it runs. */
export interface ExecuteContext {
  /** Aborted when the caller's signal aborts or an enclosing timeout fires; never after the work succeeded. */
  readonly signal: AbortSignal;
  /** 1 for the first attempt, 2 for the first retry, and so on (1 outside any retry). */
  readonly attempt: number;
}

type AbortSubscriber = (reason: unknown) => void;

/** The abort state of a scope that can abort on its own (a timeout's); absent on pass-through scopes. */
class OwnAbort {
  controller: AbortController | undefined = undefined;
  aborted = false;
  reason: unknown = undefined;
  subscribers: AbortSubscriber[] | undefined = undefined;
  unlink: (() => void) | undefined = undefined;
  disposed = false;
}

/**
 * The context of one call through a policy chain. An AbortController is created only when the
 * work reads `signal` (most calls never do), and aborts travel between scopes as plain callbacks,
 * so a call that nobody aborts allocates no controller and registers no listener.
 * @internal
 */
export class Scope implements ExecuteContext {
  readonly attempt: number;
  private readonly parent: Scope | undefined;
  private readonly external: AbortSignal | undefined;
  private readonly own: OwnAbort | undefined;
  /** Root scopes without a caller signal create their never-aborted signal on first read. */
  private rootController: AbortController | undefined = undefined;

  private constructor(
    parent: Scope | undefined,
    external: AbortSignal | undefined,
    attempt: number,
    own: OwnAbort | undefined,
  ) {
    this.parent = parent;
    this.external = external;
    this.attempt = attempt;
    this.own = own;
  }

  static root(signal: AbortSignal | undefined): Scope {
    return new Scope(undefined, signal, 1, undefined);
  }

  /** A scope that can be aborted on its own (timeout), following its parent's aborts. */
  child(): Scope {
    return new Scope(this, undefined, this.attempt, new OwnAbort());
  }

  /** A pass-through scope that only changes `attempt`. */
  withAttempt(attempt: number): Scope {
    return new Scope(this, undefined, attempt, undefined);
  }

  get signal(): AbortSignal {
    const own = this.own;
    if (own === undefined) {
      if (this.parent !== undefined) return this.parent.signal;
      if (this.external !== undefined) return this.external;
      return (this.rootController ??= new AbortController()).signal;
    }
    if (own.controller === undefined) {
      own.controller = new AbortController();
      if (own.aborted) own.controller.abort(own.reason);
      else this.link(own);
    }
    return own.controller.signal;
  }

  /** Whether this scope or any ancestor (or the caller's signal) has aborted. */
  get isAborted(): boolean {
    if (this.own?.aborted === true) return true;
    if (this.parent !== undefined) return this.parent.isAborted;
    return this.external?.aborted ?? false;
  }

  /** The reason of the nearest abort, if any. */
  get abortReason(): unknown {
    if (this.own?.aborted === true) return this.own.reason;
    if (this.parent !== undefined) return this.parent.abortReason;
    return this.external?.reason as unknown;
  }

  /** Whether anything (the caller's signal or an enclosing timeout) could ever abort this scope. */
  get abortable(): boolean {
    if (this.own !== undefined) return true;
    if (this.parent !== undefined) return this.parent.abortable;
    return this.external !== undefined;
  }

  /** True when the caller's own signal (not a timeout) aborted. */
  get callerAborted(): boolean {
    if (this.parent !== undefined) return this.parent.callerAborted;
    return this.external?.aborted ?? false;
  }

  /** Aborts this scope (only scopes from `child()` abort on their own). */
  abort(reason: unknown): void {
    const own = this.own;
    if (own === undefined || own.aborted || own.disposed) return;
    own.aborted = true;
    own.reason = reason;
    own.unlink?.();
    own.unlink = undefined;
    own.controller?.abort(reason);
    const subscribers = own.subscribers;
    own.subscribers = undefined;
    if (subscribers !== undefined) for (const subscriber of subscribers) subscriber(reason);
  }

  /**
   * Calls `subscriber` once when this scope aborts; returns the unsubscribe function.
   * Reaching the root adds one listener to the caller's signal, removed by the unsubscribe.
   */
  subscribe(subscriber: AbortSubscriber): () => void {
    if (this.isAborted) {
      subscriber(this.abortReason);
      return noop;
    }
    const own = this.own;
    if (own === undefined) {
      if (this.parent !== undefined) return this.parent.subscribe(subscriber);
      const external = this.external;
      if (external === undefined) return noop;
      const listener = (): void => subscriber(external.reason);
      external.addEventListener('abort', listener, { once: true });
      return () => external.removeEventListener('abort', listener);
    }
    if (own.disposed) return noop;
    this.link(own);
    const list = (own.subscribers ??= []);
    list.push(subscriber);
    return () => {
      const index = list.indexOf(subscriber);
      if (index !== -1) list.splice(index, 1);
    };
  }

  /** Detaches from the parent: after this, nothing aborts this scope's signal. */
  dispose(): void {
    const own = this.own;
    if (own === undefined || own.disposed) return;
    own.disposed = true;
    own.unlink?.();
    own.unlink = undefined;
    own.subscribers = undefined;
  }

  private link(own: OwnAbort): void {
    const parent = this.parent;
    if (parent === undefined || own.unlink !== undefined || own.disposed || own.aborted) return;
    own.unlink = parent.subscribe((reason) => this.abort(reason));
  }
}

function noop(): void {}
