/** Returned by every event subscription. */
export interface Disposable {
  dispose(): void;
}

/** Adds a listener and returns a handle that removes it. */
export type Event<T> = (listener: (event: T) => void) => Disposable;

/** A private emitter behind a public {@link Event}. */
export class Emitter<T> {
  readonly #listeners = new Set<(event: T) => void>();

  readonly event: Event<T> = (listener) => {
    this.#listeners.add(listener);
    return { dispose: () => this.#listeners.delete(listener) };
  };

  /** True when someone listens, so work that only feeds listeners can be skipped. */
  get active(): boolean {
    return this.#listeners.size > 0;
  }

  emit(value: T): void {
    for (const listener of this.#listeners) {
      // A throwing listener must not break the SMTP session.
      try {
        listener(value);
      } catch {
        /* listener errors are the listener's problem */
      }
    }
  }
}
