/** Where time comes from; tests inject a manual clock. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

/** Any pino logger satisfies this. */
export interface Logger {
  debug(object: object | string, message?: string): void;
  info(object: object | string, message?: string): void;
  warn(object: object | string, message?: string): void;
  error(object: object | string, message?: string): void;
}

/** The system clock. */
export const systemClock: Clock = { now: () => Date.now() };

const noop = (): void => undefined;

/** A logger that drops everything: the default, so the queue is silent unless given one. */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };
