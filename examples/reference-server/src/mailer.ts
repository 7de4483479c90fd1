import { randomBytes } from 'node:crypto';
import type { Outbox } from './outbox.js';

/** A system mail (verification, password reset): plain text, one recipient. */
export interface SystemMail {
  to: string;
  subject: string;
  text: string;
}

/** Sends system mail through the service's outbound path. */
export interface Mailer {
  send(mail: SystemMail): Promise<void>;
}

/** Builds the RFC 5322 text of a system mail. Header values are stripped of CR and LF, so nothing can inject a header. */
export function composeSystemMail(mail: SystemMail, from: string, now: Date = new Date()): string {
  const clean = (value: string): string => value.replace(/[\r\n]+/g, ' ');
  const domain = from.split('@')[1] ?? 'localhost';
  return [
    `From: Postern <${clean(from)}>`,
    `To: <${clean(mail.to)}>`,
    `Subject: ${clean(mail.subject)}`,
    `Date: ${now.toUTCString()}`,
    `Message-ID: <${randomBytes(12).toString('hex')}@${domain}>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    mail.text.replace(/\r?\n/g, '\r\n'),
    '',
  ].join('\r\n');
}

/** Development mailer: system mail goes to the outbox, like forwarded mail. */
export class OutboxMailer implements Mailer {
  readonly #outbox: Outbox;
  readonly #from: string;

  constructor(outbox: Outbox, from: string) {
    this.#outbox = outbox;
    this.#from = from;
  }

  async send(mail: SystemMail): Promise<void> {
    await this.#outbox.write({
      from: this.#from,
      to: [mail.to],
      raw: composeSystemMail(mail, this.#from),
    });
  }
}

/** Production mailer: system mail leaves through the first configured relay (nodemailer SMTP client, pooled). */
export class RelayMailer implements Mailer {
  readonly #from: string;
  readonly #relays: readonly string[];
  readonly #timeoutMs: number;

  constructor(relays: readonly string[], from: string, timeoutMs = 30_000) {
    this.#relays = relays;
    this.#from = from;
    this.#timeoutMs = timeoutMs;
  }

  async send(mail: SystemMail): Promise<void> {
    const { createTransport } = await import('nodemailer');
    let lastError: unknown;
    // Relays are tried in order, as the SMTP process does for forwarded mail.
    for (const relay of this.#relays) {
      const transport = createTransport({
        url: relay,
        connectionTimeout: this.#timeoutMs,
        greetingTimeout: this.#timeoutMs,
        socketTimeout: this.#timeoutMs,
      } as never);
      try {
        await transport.sendMail({
          envelope: { from: this.#from, to: [mail.to] },
          raw: composeSystemMail(mail, this.#from),
        });
        return;
      } catch (error) {
        lastError = error;
      } finally {
        transport.close();
      }
    }
    throw new Error('no relay accepted the system mail', { cause: lastError });
  }
}

/** Where `QueueMailer` puts system mail: any queue with `add` (a @postern/sync-queue `SyncQueue`). */
export interface SystemMailQueue {
  add(mail: SystemMail): Promise<unknown>;
}

/**
 * Production mailer with Redis: system mail is queued (durable once `add` resolves) and a worker
 * relays it with retries and backoff, so a relay outage delays a verification mail instead of
 * failing the registration.
 */
export class QueueMailer implements Mailer {
  readonly #queue: SystemMailQueue;

  constructor(queue: SystemMailQueue) {
    this.#queue = queue;
  }

  async send(mail: SystemMail): Promise<void> {
    await this.#queue.add(mail);
  }
}
