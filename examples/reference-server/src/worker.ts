import { SmtpForwardError, SmtpForwarder } from '@postern/smtp-forward';
import type {
  DeliveryEvent,
  DkimOptions,
  Policy,
  QueuedDelivery,
  RelayOptions,
} from '@postern/smtp-forward';
import { PermanentError } from '@postern/sync-queue';
import type { DeadLetter, Job, RetryOptions, SyncQueue } from '@postern/sync-queue';
import type { Metrics } from './metrics.js';
import { reasonLabel } from './smtp/keys.js';

/** The sync-queue that carries spooled messages from the SMTP process to the workers. */
export const DELIVERY_QUEUE = 'smtp-delivery';

/** The sync-queue that carries system mail (verification, reset) from the API to the workers. */
export const SYSTEM_MAIL_QUEUE = 'system-mail';

/** How long, and how often, queued messages are retried (the `SMTP_QUEUE_LIFETIME_MS`, `SMTP_BOUNCE_LIFETIME_MS` and `SMTP_RETRY_*` settings). */
export interface DeliveryRetry {
  /** Age at which a message still not delivered is bounced to its sender, in ms (Postfix's `maximal_queue_lifetime`). */
  lifetimeMs: number;
  /**
   * How long after `lifetimeMs` a DSN that relays keep deferring is still retried, in ms
   * (Postfix's `bounce_queue_lifetime`); then the message is recorded lost and its spool dropped.
   */
  bounceLifetimeMs: number;
  /** Delay before the first retry, in ms; it doubles on every retry up to `maxDelayMs`. */
  initialDelayMs: number;
  /** Longest delay between two tries, in ms. */
  maxDelayMs: number;
}

/**
 * The delivery queue's retry options, the same in the SMTP process (which adds jobs) and the
 * workers (which retry them): delays double from `initialDelayMs` to `maxDelayMs`, and a job gets
 * enough runs to span `lifetimeMs` and then `bounceLifetimeMs` even when jitter halves every
 * delay, so the message's age, not its run count, decides when it is bounced and when a DSN that
 * cannot go out is given up (see `createDeliveryHandler`).
 */
export function deliveryRetryOptions(retry: DeliveryRetry): Required<RetryOptions> {
  const maxDelayMs = Math.max(retry.maxDelayMs, retry.initialDelayMs);
  const span = retry.lifetimeMs + retry.bounceLifetimeMs;
  let runs = 1;
  let spanned = 0;
  for (let delay = retry.initialDelayMs; spanned < span; runs += 1) {
    spanned += delay / 2;
    delay = Math.min(delay * 2, maxDelayMs);
  }
  return {
    maxAttempts: Math.min(runs + 1, 1_000_000),
    initialDelayMs: retry.initialDelayMs,
    factor: 2,
    maxDelayMs,
    jitter: true,
  };
}

/** Options of `createDeliveryHandler`. */
export interface DeliveryHandlerOptions {
  /** The forwarding domain: the DSN comes from MAILER-DAEMON at it. */
  domain: string;
  /** Relays tried in order for each message and for each bounce. */
  relays: readonly RelayOptions[];
  /** The forwarding domain's key: DSNs are DKIM-signed with it. Default: unsigned DSNs. */
  dkim?: DkimOptions;
  /** Wraps each relay attempt (timeout, circuit breaker). Default: run once. */
  policy?: Policy;
  /**
   * Age (since the job was first queued) from which a run is the message's last: a temporary
   * failure then bounces it instead of retrying. Default: none, the job's runs decide alone.
   */
  lifetimeMs?: number;
  /**
   * How long after `lifetimeMs` a DSN the relays keep deferring is retried; then the job goes to
   * the dead letters (dead-deliveries.ts records it lost and drops its spool). Default: 0.
   */
  bounceLifetimeMs?: number;
  /** Clock for `lifetimeMs`, in ms since the epoch. Default: `Date.now`. */
  now?: () => number;
  /** Records a bounce in the forwarding log, by alias address (sub-address tags included). */
  recordBounce: (alias: string, details: { reason: string; messageId: string }) => Promise<void>;
  metrics?: Pick<Metrics, 'smtpMessages'>;
  logger?: ConstructorParameters<typeof SmtpForwarder>[0]['logger'];
}

/** The handler of the delivery queue, and the forwarder it delivers with (close it on shutdown). */
export interface DeliveryHandler {
  handle(job: Job<QueuedDelivery>): Promise<void>;
  /** The forwarder it delivers with; its `bounceQueued` settles dead letters (dead-deliveries.ts). */
  readonly forwarder: SmtpForwarder;
  close(): Promise<void>;
}

/**
 * When a queued message was spooled, in ms since the epoch: its `queuedAt`, or `fallback` (the
 * time the queue first stored the job) for a job spooled before `queuedAt` was recorded.
 */
export function queuedAt(delivery: QueuedDelivery, fallback: number): number {
  const at = (delivery as { queuedAt?: unknown }).queuedAt;
  return typeof at === 'number' && Number.isFinite(at) ? at : fallback;
}

// The relay's answer names the private destination (`550 <me@dest>: no such user`); the log keeps
// the reason without it, as the DSN does.
function redact(text: string): string {
  return text.replace(/[^\s<>"]+@[^\s<>"]+/g, '<redacted>').slice(0, 300);
}

/**
 * Delivers spooled messages with @postern/smtp-forward's own `deliverQueued` (the forwarder is
 * never listening here). A temporary failure throws, so sync-queue retries with backoff; a
 * permanent one (5xx), or a temporary one on the last attempt or once the message is older than
 * `lifetimeMs`, completes the job with a DSN to
 * the original (SRS-reversed) sender naming the alias, never the destination (DKIM-signed with
 * `dkim`), and a `bounced`
 * row in the forwarding log and the `smtp_messages_total{outcome="bounced"}` metric.
 */
export function createDeliveryHandler(options: DeliveryHandlerOptions): DeliveryHandler {
  const forwarder = new SmtpForwarder({
    domain: options.domain,
    // Never asked: this forwarder does not listen; it only delivers what the SMTP process spooled.
    resolver: () => Promise.resolve(null),
    transport: { relays: [...options.relays] },
    ...(options.dkim === undefined ? {} : { dkim: options.dkim }),
    ...(options.policy === undefined ? {} : { policy: options.policy }),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
  // The bounces each run of a message saw, oldest run first: sync-queue may start a second run of
  // a message whose first run outlived its handler timeout. Only the run holding the message's
  // claim sends, and that is the oldest; a newer run fails at once and must not drop its events.
  const bounces = new Map<string, DeliveryEvent[][]>();
  const now = options.now ?? Date.now;
  // The label is the status code, never the relay's text (destinations, queue ids, delays).
  const count = (outcome: string, reason: string): void =>
    options.metrics?.smtpMessages.inc({ outcome, reason: reasonLabel(reason) });
  forwarder.onForwarded((event) => count('forwarded', event.reason));
  forwarder.onDeferred((event) => count('deferred', redact(event.reason)));
  // The forwarder reports a bounce only once its DSN went out; a DSN no relay took fails the job
  // instead, which is retried or reaches the dead letters and dead-deliveries.ts.
  forwarder.onBounced((event) => bounces.get(event.messageId)?.[0]?.push(event));

  return {
    async handle(job) {
      const { payload } = job;
      const seen: DeliveryEvent[] = [];
      const runs = bounces.get(payload.messageId) ?? [];
      runs.push(seen);
      bounces.set(payload.messageId, runs);
      // Its age counts from when the SMTP process spooled it: a job queued again at a start
      // (pendingSpool) does not get a fresh lifetime.
      const age = now() - queuedAt(payload, job.createdAt);
      const lifetimeMs = options.lifetimeMs ?? Infinity;
      try {
        await forwarder.deliverQueued(payload, {
          attempt: job.attempt,
          finalAttempt: job.attempt >= job.maxAttempts || age >= lifetimeMs,
        });
      } catch (error) {
        // Nothing another run could change (the spool is gone, its record damaged, the DSN
        // refused for good), or a DSN still deferred at the end of the bounce lifetime: to the
        // dead letters at once, which settle it, not after more runs.
        if (
          SmtpForwardError.isInstance(error) &&
          (!error.temporary || age >= lifetimeMs + (options.bounceLifetimeMs ?? 0))
        )
          throw new PermanentError(error.message, { cause: error });
        throw error;
      } finally {
        runs.splice(runs.indexOf(seen), 1);
        if (runs.length === 0) bounces.delete(payload.messageId);
        // Every event seen is a DSN that went out, whatever this run ends with.
        for (const event of seen) {
          count('bounced', redact(event.reason));
          for (const alias of payload.aliases)
            await options.recordBounce(alias, {
              reason: redact(event.reason),
              messageId: payload.messageId,
            });
        }
      }
    },
    forwarder,
    close: () => forwarder.close({ timeoutMs: 1_000 }),
  };
}

/** The dead letter with this id (a `dead` event from an expired lease carries only the id), paging 100 at a time. */
export async function findDeadLetter<T>(
  queue: Pick<SyncQueue<T>, 'deadLetters'>,
  id: string,
): Promise<DeadLetter<T> | undefined> {
  for (let offset = 0; ; offset += 100) {
    const page = await queue.deadLetters.list({ offset, limit: 100 });
    const found = page.find((letter) => letter.id === id);
    if (found !== undefined || page.length < 100) return found;
  }
}
