/** What subscribing to an event returns. */
export interface Disposable {
  /** Removes the listener. */
  dispose(): void;
}

/** A listener registry; errors thrown by listeners never reach the queue. */
export class EventSource<E> {
  readonly #listeners = new Set<(event: E) => void>();

  get listening(): boolean {
    return this.#listeners.size > 0;
  }

  subscribe = (listener: (event: E) => void): Disposable => {
    const wrapped = (event: E): void => listener(event);
    this.#listeners.add(wrapped);
    return { dispose: () => void this.#listeners.delete(wrapped) };
  };

  emit(event: E): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        // A listener's bug must not stop the worker that emitted the event.
      }
    }
  }
}
