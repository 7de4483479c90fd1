/** Any policy from @postern/resilience satisfies this; so does a hand-written object. */
export interface Policy {
  execute<T>(
    fn: (context: { signal: AbortSignal }) => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T>;
}

/** Any limiter from @postern/rate-limit satisfies this. */
export interface RateLimiter {
  consume(
    key: string,
    options?: { cost?: number },
  ): Promise<{ allowed: boolean; retryAfterMs: number }>;
}

/** Any pino logger satisfies this. */
export interface Logger {
  debug(object: object | string, message?: string): void;
  info(object: object | string, message?: string): void;
  warn(object: object | string, message?: string): void;
  error(object: object | string, message?: string): void;
  child(bindings: object): Logger;
}

/** A source of time, so tests can move it by hand. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

/** A message that was durably spooled and must be delivered by a worker. */
export interface QueuedDelivery {
  /** Our id for the message (also in the Received header). */
  messageId: string;
  /** Absolute path of the spooled message file (headers already rewritten, signed). */
  path: string;
  /** Envelope sender to use outbound ('' for a bounce). */
  mailFrom: string;
  /** Original envelope sender, for a DSN when delivery finally fails ('' if none). */
  originalSender: string;
  /** Final destinations. */
  recipients: string[];
  /** The aliases the sender wrote to (named in a bounce instead of the private destinations). */
  aliases: string[];
  /**
   * When the message was accepted and spooled, in ms since the epoch (the forwarder's `clock`):
   * a queue that adds the job again (`pendingSpool`) keeps its age, so its lifetime is not
   * restarted. Absent in jobs spooled by versions before it was added.
   */
  queuedAt?: number;
}

/** Where queued mode hands spooled messages; @postern/sync-queue fits behind it. */
export interface DeliveryQueue {
  /** Resolves once the job is durable. The forwarder answers 250 only after this resolves. */
  add(job: QueuedDelivery): Promise<void>;
}

/** Returns DNS TXT records as arrays of strings, or MX records, like node:dns/promises. */
export type DnsResolver = (domain: string, rrtype: string) => Promise<unknown>;

/**
 * @internal One shared signal that never aborts: creating an AbortController per message shows up
 * in profiles. Nothing listens on it (it never fires), so concurrent sends add no listeners to it.
 */
export const NEVER_ABORTED: AbortSignal = new AbortController().signal;

/** A policy that runs the function once, with a signal that never aborts. */
export const passThroughPolicy: Policy = {
  execute<T>(
    fn: (context: { signal: AbortSignal }) => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    return fn({ signal: signal ?? NEVER_ABORTED });
  },
};

/** A limiter that allows everything: the default when no `rateLimiter` is given. */
export const unlimitedRateLimiter: RateLimiter = {
  consume: () => Promise.resolve({ allowed: true, retryAfterMs: 0 }),
};

const noop = (): void => {};

/** A logger that drops everything: the default when no `logger` is given. */
export const silentLogger: Logger = {
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => silentLogger,
};

/** The wall clock. */
export const systemClock: Clock = { now: () => Date.now() };
