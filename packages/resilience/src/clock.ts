/** Opaque handle returned by `Clock.setTimeout`. */
export type TimerHandle = unknown;

/** Time source and timer scheduler; inject a manual clock in tests instead of sleeping. */
export interface Clock {
  /** Current time in ms (wall clock: breaker state saved in one process is read by another). */
  now(): number;
  /** Schedules `callback` after `ms`; `unref` lets the process exit while the timer is pending. */
  setTimeout(callback: () => void, ms: number, unref: boolean): TimerHandle;
  /** Cancels a timer from `setTimeout`; cancelling twice or after it fired is a no-op. */
  clearTimeout(handle: TimerHandle): void;
}

/** The real clock: `Date.now` and Node's timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(callback, ms, unref) {
    const timer = setTimeout(callback, ms);
    if (unref) timer.unref();
    return timer;
  },
  clearTimeout(handle) {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};
