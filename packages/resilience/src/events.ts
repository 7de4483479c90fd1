/** Returned by every event subscription; call `dispose()` to stop listening. */
export interface Disposable {
  dispose(): void;
}

/** Subscribes a listener and returns a handle that unsubscribes it. */
export type Event<T> = (listener: (value: T) => void) => Disposable;

/** A minimal emitter: policies keep it private and expose only `event`. */
export class Emitter<T> {
  private listeners: Array<(value: T) => void> = [];

  /** True when someone listens, so work that only feeds listeners can be skipped. */
  get active(): boolean {
    return this.listeners.length > 0;
  }

  readonly event: Event<T> = (listener) => {
    // Copy on write so a listener that disposes itself during emit does not skip its neighbour.
    this.listeners = [...this.listeners, listener];
    let disposed = false;
    return {
      dispose: () => {
        if (disposed) return;
        disposed = true;
        const index = this.listeners.indexOf(listener);
        if (index !== -1) this.listeners = this.listeners.filter((_, i) => i !== index);
      },
    };
  };

  emit(value: T): void {
    const listeners = this.listeners;
    for (const listener of listeners) {
      try {
        listener(value);
      } catch (error) {
        // A throwing listener must not leave the policy half-updated; surface it without unwinding us.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
