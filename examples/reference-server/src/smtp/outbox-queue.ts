import { readFile, unlink } from 'node:fs/promises';
import type { DeliveryQueue, QueuedDelivery } from '@postern/smtp-forward';
import type { Outbox } from '../outbox.js';

/**
 * The development "relay": the forwarder spools each message (signed, SRS-rewritten) and this
 * queue moves it into the outbox at once, so a first look needs no mail provider and no worker.
 */
export class OutboxDeliveryQueue implements DeliveryQueue {
  readonly #outbox: Outbox;

  constructor(outbox: Outbox) {
    this.#outbox = outbox;
  }

  async add(job: QueuedDelivery): Promise<void> {
    const raw = await readFile(job.path);
    await this.#outbox.write({ from: job.mailFrom, to: job.recipients, raw });
    // The spool and its job file: nothing of a message moved to the outbox stays behind.
    await Promise.all(
      [job.path, `${job.path}.json`].map((path) => unlink(path).catch(() => undefined)),
    );
  }
}
