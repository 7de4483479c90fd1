import { randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import type { QueuedDelivery } from '@postern/smtp-forward';
import type { Metrics } from './metrics.js';

/** Options of `createDeadDeliveryHandler`. */
export interface DeadDeliveryOptions {
  /** The forwarding domain: the DSN comes from MAILER-DAEMON at it. */
  domain: string;
  /** Relay URLs (`smtp://host:port`) tried in order for the DSN. */
  relays: readonly string[];
  /** The forwarding domain's key: the DSN is DKIM-signed with it. Default: unsigned. */
  dkim?: { selector: string; privateKey: string };
  /** Socket timeouts of each relay attempt, in ms. Default: 30_000. */
  timeoutMs?: number;
  /** Appends a row to the forwarding log, by alias address (sub-address tags included). */
  record: (
    alias: string,
    outcome: 'bounced' | 'lost',
    details: { reason: string; messageId: string },
  ) => Promise<void>;
  metrics?: Pick<Metrics, 'smtpMessages'>;
  logger?: { error(fields: object, message: string): void };
  /** Clock of the DSN's Date header. Default: Date.now. */
  now?: () => number;
}

/** What became of a dead delivery: a DSN went to the sender, or it is recorded as a loss. */
export type DeadDeliveryOutcome = 'bounced' | 'lost';

// The reason may carry a relay answer naming the private destination: keep it out of logs and DSNs.
function redact(text: string): string {
  return text
    .replace(/[^\s<>"]+@[^\s<>"]+/g, '<redacted>')
    .replace(/[\r\n]+/g, ' ')
    .slice(0, 300);
}

/** The original message's header block (everything before the first empty line). */
async function readHeaders(path: string): Promise<string> {
  const text = (await readFile(path)).toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  return end < 0 ? text : text.slice(0, end);
}

/** An RFC 3464 delivery status notification that names the aliases, never the destinations. */
export function composeDsn(options: {
  domain: string;
  to: string;
  aliases: readonly string[];
  reason: string;
  originalHeaders: string;
  date: Date;
}): string {
  const boundary = `dsn-${randomBytes(8).toString('hex')}`;
  const perRecipient = options.aliases
    .map(
      (alias) =>
        `Final-Recipient: rfc822; ${alias}\r\nAction: failed\r\nStatus: 4.4.7\r\n` +
        `Diagnostic-Code: smtp; ${options.reason}\r\n`,
    )
    .join('\r\n');
  return [
    `From: Mail Delivery System <MAILER-DAEMON@${options.domain}>`,
    `To: <${options.to}>`,
    'Subject: Undelivered Mail Returned to Sender',
    `Date: ${options.date.toUTCString()}`,
    `Message-ID: <${randomBytes(12).toString('hex')}@${options.domain}>`,
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=utf-8',
    '',
    `Your message to ${options.aliases.join(', ')} could not be delivered and was given up on.`,
    `Reason: ${options.reason}`,
    '',
    `--${boundary}`,
    'Content-Type: message/delivery-status',
    '',
    `Reporting-MTA: dns; ${options.domain}`,
    '',
    perRecipient,
    `--${boundary}`,
    'Content-Type: text/rfc822-headers',
    '',
    options.originalHeaders.replace(/\r?\n/g, '\r\n'),
    '',
    `--${boundary}--`,
    '',
  ].join('\r\n');
}

/**
 * Settles a queued delivery that sync-queue dead-lettered for any reason other than a relay
 * refusal (which the delivery handler bounces itself): a missing spool file, a lease lost on the
 * last attempt, an error thrown on the last attempt. When the spool is readable and the message
 * had a sender, a DSN (status 4.4.7, naming the aliases) goes to the original sender, a `bounced`
 * row is logged and the spool removed. Otherwise nothing can be returned: a `lost` row is logged
 * per alias with the reason, `smtp_messages_total{outcome="lost"}` counts it, and an error is logged.
 */
export function createDeadDeliveryHandler(
  options: DeadDeliveryOptions,
): (delivery: QueuedDelivery, reason: string) => Promise<DeadDeliveryOutcome> {
  const now = options.now ?? Date.now;
  const timeoutMs = options.timeoutMs ?? 30_000;

  const sendDsn = async (delivery: QueuedDelivery, raw: string): Promise<void> => {
    const { createTransport } = await import('nodemailer');
    let lastError: unknown = new Error('no relay configured');
    for (const relay of options.relays) {
      const transport = createTransport({
        url: relay,
        connectionTimeout: timeoutMs,
        greetingTimeout: timeoutMs,
        socketTimeout: timeoutMs,
        ...(options.dkim === undefined
          ? {}
          : {
              dkim: {
                domainName: options.domain,
                keySelector: options.dkim.selector,
                privateKey: options.dkim.privateKey,
              },
            }),
      } as never);
      try {
        // A null reverse path: a bounce is never answered with a bounce.
        await transport.sendMail({ envelope: { from: false, to: [delivery.originalSender] }, raw });
        return;
      } catch (error) {
        lastError = error;
      } finally {
        transport.close();
      }
    }
    throw lastError;
  };

  const settle = async (
    delivery: QueuedDelivery,
    outcome: DeadDeliveryOutcome,
    reason: string,
  ): Promise<DeadDeliveryOutcome> => {
    options.metrics?.smtpMessages.inc({ outcome, reason: reason.slice(0, 40) });
    for (const alias of delivery.aliases)
      await options.record(alias, outcome, { reason, messageId: delivery.messageId });
    return outcome;
  };

  return async (delivery, cause) => {
    const reason = redact(cause);
    let headers: string;
    try {
      headers = await readHeaders(delivery.path);
    } catch (error) {
      const lost = `spool unreadable (${(error as NodeJS.ErrnoException).code ?? 'error'}): ${reason}`;
      options.logger?.error(
        { messageId: delivery.messageId, reason: lost },
        'dead delivery lost: nothing to bounce from',
      );
      return settle(delivery, 'lost', lost);
    }
    if (delivery.originalSender === '')
      return settle(delivery, 'lost', `null sender, no bounce: ${reason}`);
    try {
      await sendDsn(
        delivery,
        composeDsn({
          domain: options.domain,
          to: delivery.originalSender,
          aliases: delivery.aliases,
          reason,
          originalHeaders: headers,
          date: new Date(now()),
        }),
      );
    } catch (error) {
      const lost = `bounce undeliverable (${redact((error as Error).message)}): ${reason}`;
      options.logger?.error({ messageId: delivery.messageId, reason: lost }, 'dead delivery lost');
      return settle(delivery, 'lost', lost);
    }
    await Promise.all(
      [delivery.path, `${delivery.path}.json`, `${delivery.path}.delivered`].map((path) =>
        rm(path, { force: true }),
      ),
    );
    return settle(delivery, 'bounced', reason);
  };
}
