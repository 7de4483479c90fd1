import { readFile, unlink } from 'node:fs/promises';
import type { QueuedDelivery } from '@postern/smtp-forward';
import type { Job } from '@postern/sync-queue';

/** The sync-queue that carries spooled messages from the SMTP process to the workers. */
export const DELIVERY_QUEUE = 'smtp-delivery';

/** The sync-queue that carries system mail (verification, reset) from the API to the workers. */
export const SYSTEM_MAIL_QUEUE = 'system-mail';

/** Sends one raw message to the first relay that takes it. */
export type RawSender = (
  envelope: { from: string; to: readonly string[] },
  raw: Buffer,
) => Promise<void>;

/** A nodemailer-based sender over the configured relays, tried in order. */
export function relaySender(relays: readonly string[], timeoutMs: number): RawSender {
  return async (envelope, raw) => {
    const { createTransport } = await import('nodemailer');
    let lastError: unknown = new Error('no relay configured');
    for (const relay of relays) {
      const transport = createTransport({
        url: relay,
        connectionTimeout: timeoutMs,
        greetingTimeout: timeoutMs,
        socketTimeout: timeoutMs,
      } as never);
      try {
        await transport.sendMail({ envelope: { from: envelope.from, to: [...envelope.to] }, raw });
        return;
      } catch (error) {
        lastError = error;
      } finally {
        transport.close();
      }
    }
    throw lastError;
  };
}

/**
 * The handler of a queued delivery: read the spooled file, relay it, then delete it. A failure
 * throws, so sync-queue retries with backoff and finally dead-letters the job; the job id is the
 * message id, so a retry after a crash re-sends the same message (at least once, never lost).
 */
export function deliveryHandler(send: RawSender): (job: Job<QueuedDelivery>) => Promise<void> {
  return async (job) => {
    const raw = await readFile(job.payload.path);
    await send({ from: job.payload.mailFrom, to: job.payload.recipients }, raw);
    await unlink(job.payload.path).catch(() => undefined);
  };
}
