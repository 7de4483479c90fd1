import type { Clock } from './ports.js';

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
