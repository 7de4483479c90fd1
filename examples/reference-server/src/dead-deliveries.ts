import { SmtpForwardError } from '@postern/smtp-forward';
import type { QueuedDelivery, SmtpForwarder } from '@postern/smtp-forward';
import type { Metrics } from './metrics.js';
import { reasonLabel } from './smtp/keys.js';

/** Options of `createDeadDeliveryHandler`. */
export interface DeadDeliveryOptions {
  /**
   * The forwarder that delivers the queue's jobs: its `bounceQueued` sends the DSN (from
   * MAILER-DAEMON at its domain, through its relays, DKIM-signed with its key) and removes the spool.
   */
  forwarder: Pick<SmtpForwarder, 'bounceQueued' | 'dropQueued'>;
  /** Appends a row to the forwarding log, by alias address (sub-address tags included). */
  record: (
    alias: string,
    outcome: 'bounced' | 'lost',
    details: { reason: string; messageId: string },
  ) => Promise<void>;
  metrics?: Pick<Metrics, 'smtpMessages'>;
  logger?: {
    error(fields: object, message: string): void;
    warn(fields: object, message: string): void;
  };
  /**
   * Queues the job again when its DSN was deferred (the relays answered 4xx or could not be
   * reached) and `expired` says there is still time: its next run delivers it or bounces it.
   * Without it, a deferred DSN is a loss.
   */
  retry?: (delivery: QueuedDelivery) => Promise<void>;
  /** True once the job is past the time its DSN may still be retried. Default: always true. */
  expired?: (delivery: QueuedDelivery) => boolean;
}

/**
 * What became of a dead delivery: a DSN went to the sender, it is recorded as a loss, or the
 * worker still sending it when its lease ran out finished it (delivered or bounced, and recorded
 * by that worker): nothing more to do; or its DSN was deferred and the job queued again.
 */
export type DeadDeliveryOutcome = 'bounced' | 'lost' | 'settled' | 'retried';

/**
 * The metric label of a dead delivery's reason: its kind (`spool unreadable`, `bounce
 * undeliverable`, `null sender`), else the status code in it; never free text, each a new series.
 */
function lossLabel(reason: string): string {
  const kind = /^(spool unreadable|bounce undeliverable|null sender)\b/.exec(reason);
  return kind?.[1] ?? reasonLabel(reason);
}

// The reason may carry a relay answer naming the private destination: keep it out of logs and DSNs.
function redact(text: string): string {
  return text
    .replace(/[^\s<>"]+@[^\s<>"]+/g, '<redacted>')
    .replace(/[\r\n]+/g, ' ')
    .slice(0, 300);
}

/**
 * Settles a queued delivery that sync-queue dead-lettered for any reason other than a relay
 * refusal (which the delivery handler bounces itself): a missing spool file, a lease lost on the
 * last attempt, an error thrown on the last attempt. When the spool is readable and the message
 * had a sender, a DSN (status 4.4.7, naming the aliases) goes to the original sender, a `bounced`
 * row is logged and the spool removed. When a worker was still sending the job, this waits for it
 * (`bounceQueued` claims the job first): if that worker settled it, the outcome is `settled` and
 * nothing is sent or logged twice. When the relays defer the DSN and the job is not `expired`, it
 * is queued again (`retry`). Otherwise nothing can be returned: a `lost` row is logged per alias
 * with the reason, `smtp_messages_total{outcome="lost"}` counts it, an error is logged, and the
 * spool is dropped (`dropQueued`), so the next start does not queue it again.
 */
export function createDeadDeliveryHandler(
  options: DeadDeliveryOptions,
): (delivery: QueuedDelivery, reason: string) => Promise<DeadDeliveryOutcome> {
  const settle = async (
    delivery: QueuedDelivery,
    outcome: 'bounced' | 'lost',
    reason: string,
  ): Promise<DeadDeliveryOutcome> => {
    options.metrics?.smtpMessages.inc({ outcome, reason: lossLabel(reason) });
    for (const alias of delivery.aliases)
      await options.record(alias, outcome, { reason, messageId: delivery.messageId });
    if (outcome === 'lost') {
      // Recorded first: a crash before the drop queues it again at the next start, never unrecorded.
      await options.forwarder.dropQueued(delivery, reason).catch((error: unknown) => {
        options.logger?.warn(
          { messageId: delivery.messageId, error: (error as Error).message },
          'lost delivery could not be dropped; the next start queues it again',
        );
      });
    }
    return outcome;
  };

  return async (delivery, cause) => {
    const reason = redact(cause);
    let sent: boolean;
    try {
      sent = await options.forwarder.bounceQueued(delivery, reason);
    } catch (error) {
      // The lease ran out, not the work: the worker holding the job settled it and recorded that.
      if (SmtpForwardError.isInstance(error) && error.code === 'ALREADY_SETTLED') return 'settled';
      const unreadable = SmtpForwardError.isInstance(error) && error.code === 'SPOOL_UNREADABLE';
      const deferred = SmtpForwardError.isInstance(error) && error.temporary;
      if (deferred && options.retry !== undefined && !(options.expired?.(delivery) ?? true)) {
        options.logger?.warn(
          { messageId: delivery.messageId, reason: redact((error as Error).message) },
          'DSN of a dead delivery deferred: queued again',
        );
        await options.retry(delivery);
        return 'retried';
      }
      const code = (error as { cause?: NodeJS.ErrnoException }).cause?.code ?? 'error';
      const lost = unreadable
        ? `spool unreadable (${code}): ${reason}`
        : `bounce undeliverable (${redact((error as Error).message)}): ${reason}`;
      options.logger?.error(
        { messageId: delivery.messageId, reason: lost },
        unreadable ? 'dead delivery lost: nothing to bounce from' : 'dead delivery lost',
      );
      return settle(delivery, 'lost', lost);
    }
    if (!sent) return settle(delivery, 'lost', `null sender, no bounce: ${reason}`);
    return settle(delivery, 'bounced', reason);
  };
}
