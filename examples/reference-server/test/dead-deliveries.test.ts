import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SmtpForwarder } from '@postern/smtp-forward';
import type { QueuedDelivery } from '@postern/smtp-forward';
import { SyncQueue } from '@postern/sync-queue';
import { RedisBackend } from '@postern/sync-queue/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeadDeliveryHandler } from '../src/dead-deliveries.js';
import { createMetrics } from '../src/metrics.js';
import { parseRelay } from '../src/smtp/process.js';
import { DELIVERY_QUEUE } from '../src/worker.js';
import { eventually, startCaptureServer } from './support/capture.js';
import { dkimVerdictsFor } from './support/dkim.js';
import { seedAlias, startProcessHarness } from './support/processes.js';
import type { ProcessHarness } from './support/processes.js';

const SPOOLED = 'From: a@origin.test\r\nTo: shop@alias.test\r\nSubject: given up\r\n\r\nbody\r\n';

function delivery(path: string, overrides: Partial<QueuedDelivery> = {}): QueuedDelivery {
  return {
    messageId: 'm1',
    path,
    mailFrom: 'SRS0=x=yy=origin.test=a@alias.test',
    originalSender: 'a@origin.test',
    recipients: ['private@dest.test'],
    aliases: ['shop+tag@alias.test'],
    ...overrides,
  };
}

describe('createDeadDeliveryHandler', () => {
  let relay: Awaited<ReturnType<typeof startCaptureServer>>;
  let refusing: Awaited<ReturnType<typeof startCaptureServer>>;
  let dir: string;
  const forwarders: SmtpForwarder[] = [];
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicBase64 = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');

  beforeAll(async () => {
    relay = await startCaptureServer();
    refusing = await startCaptureServer({ refuse: { addresses: ['a@origin.test'], code: 550 } });
    dir = await mkdtemp(join(tmpdir(), 'postern-dead-'));
  });
  afterAll(async () => {
    await Promise.all(forwarders.map((forwarder) => forwarder.close({ timeoutMs: 100 })));
    await relay.close();
    await refusing.close();
    await rm(dir, { recursive: true, force: true });
  });

  function handler(relays: string[]) {
    const recorded: { alias: string; outcome: string; reason: string; messageId: string }[] = [];
    const metrics = createMetrics('worker');
    // The forwarder a worker delivers with: it sends the DSN through its relays, signed.
    const forwarder = new SmtpForwarder({
      domain: 'alias.test',
      resolver: () => Promise.resolve(null),
      transport: { relays: relays.map(parseRelay) },
      dkim: {
        selector: 'sel',
        privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      },
      clock: { now: () => Date.UTC(2026, 0, 2) },
    });
    forwarders.push(forwarder);
    const settle = createDeadDeliveryHandler({
      forwarder,
      record: (alias, outcome, details) => {
        recorded.push({ alias, outcome, ...details });
        return Promise.resolve();
      },
      metrics,
    });
    return { settle, recorded, metrics };
  }

  it('bounces from a readable spool: null sender, names the alias not the destination, DKIM-signed, spool removed', async () => {
    const path = join(dir, 'm1.eml');
    await writeFile(path, SPOOLED);
    await writeFile(`${path}.json`, '{}');
    const { settle, recorded, metrics } = handler([`smtp://127.0.0.1:${relay.port}`]);
    expect(
      await settle(
        delivery(path),
        'SyncQueueError: Lease expired on the last attempt. private@dest.test',
      ),
    ).toBe('bounced');
    const dsn = relay.messages.find((message) => message.to.includes('a@origin.test'));
    expect(dsn?.from).toBe('');
    const text = dsn?.data.toString('utf8') ?? '';
    expect(text).toContain('From: Mail Delivery System <MAILER-DAEMON@alias.test>');
    expect(text).toContain('report-type=delivery-status');
    expect(text).toContain('Final-Recipient: rfc822; shop+tag@alias.test');
    expect(text).toContain('Status: 4.4.7');
    expect(text).toContain('Subject: given up');
    expect(text).toContain('Lease expired on the last attempt');
    expect(text).not.toContain('private@dest.test');
    expect(
      await dkimVerdictsFor(dsn!, [
        { name: 'alias.test', selector: 'sel', publicKey: publicBase64 },
      ]),
    ).toEqual([['alias.test', 'pass']]);
    expect(recorded).toEqual([
      {
        alias: 'shop+tag@alias.test',
        outcome: 'bounced',
        reason: 'SyncQueueError: Lease expired on the last attempt. <redacted>',
        messageId: 'm1',
      },
    ]);
    expect(await metrics.registry.getSingleMetricAsString('postern_smtp_messages_total')).toMatch(
      /outcome="bounced"[^}]*\} 1/,
    );
    // Only the marks of settled jobs stay (@postern/smtp-forward keeps them for 7 days).
    expect(await readdir(dir)).toEqual(['settled']);
  });

  it('records a loss, counted with its reason, when the spool file is gone', async () => {
    const { settle, recorded, metrics } = handler([`smtp://127.0.0.1:${relay.port}`]);
    const before = relay.messages.length;
    expect(await settle(delivery(join(dir, 'missing.eml')), 'Error: ENOENT')).toBe('lost');
    expect(relay.messages).toHaveLength(before);
    expect(recorded).toEqual([
      {
        alias: 'shop+tag@alias.test',
        outcome: 'lost',
        reason: expect.stringMatching(/^spool unreadable \(ENOENT\)/) as string,
        messageId: 'm1',
      },
    ]);
    expect(await metrics.registry.getSingleMetricAsString('postern_smtp_messages_total')).toMatch(
      /outcome="lost",reason="spool unreadable"[^}]*\} 1/,
    );
  });

  it('sends nothing and records nothing when the worker still sending the job delivers it', async () => {
    const path = join(dir, 'm3.eml');
    await writeFile(path, SPOOLED);
    await writeFile(`${path}.json`, '{}');
    const slow = await startCaptureServer({ delayMs: 400 });
    let holder: SmtpForwarder | undefined;
    try {
      const { settle, recorded } = handler([`smtp://127.0.0.1:${slow.port}`]);
      // The worker whose lease ran out is still sending when the dead letter is settled.
      holder = new SmtpForwarder({
        domain: 'alias.test',
        resolver: () => Promise.resolve(null),
        transport: { relays: [parseRelay(`smtp://127.0.0.1:${slow.port}`)] },
      });
      const sending = holder.deliverQueued(delivery(path, { messageId: 'm3' }));
      await eventually(() =>
        readdir(dir).then((names) => names.includes('m3.eml.claim') || undefined),
      );
      expect(await settle(delivery(path, { messageId: 'm3' }), 'Lease expired')).toBe('settled');
      await sending;
      expect(slow.messages.map((message) => message.to)).toEqual([['private@dest.test']]);
      expect(recorded).toEqual([]);
      expect((await readdir(dir)).filter((name) => name.startsWith('m3'))).toEqual([]);
    } finally {
      // The holder's pooled connection would keep the slow relay from closing.
      await holder?.close({ timeoutMs: 100 });
      await slow.close();
    }
  });

  it('never bounces a bounce, records a loss when every relay refuses the DSN, and drops the spool so no start queues it again', async () => {
    const bounce = join(dir, 'm2.eml');
    await writeFile(bounce, SPOOLED);
    await writeFile(`${bounce}.json`, '{}');
    const nullSender = handler([`smtp://127.0.0.1:${relay.port}`]);
    const before = relay.messages.length;
    expect(
      await nullSender.settle(delivery(bounce, { messageId: 'm2', originalSender: '' }), 'gave up'),
    ).toBe('lost');
    expect(relay.messages).toHaveLength(before);
    expect(nullSender.recorded[0]?.reason).toBe('null sender, no bounce: gave up');

    const refusedPath = join(dir, 'm4.eml');
    await writeFile(refusedPath, SPOOLED);
    await writeFile(`${refusedPath}.json`, '{}');
    const refused = handler([`smtp://127.0.0.1:${refusing.port}`]);
    expect(await refused.settle(delivery(refusedPath, { messageId: 'm4' }), 'gave up')).toBe(
      'lost',
    );
    expect(refused.recorded[0]?.outcome).toBe('lost');
    expect(refused.recorded[0]?.reason).toMatch(/^bounce undeliverable/);
    // Recorded, then dropped: pendingSpool at the next start would otherwise queue them again.
    const left = await readdir(dir);
    expect(left.filter((name) => /^m[24]\.eml/.test(name))).toEqual([]);
  });

  it('queues a job again when its DSN is deferred and there is still time, and records the loss once time is up', async () => {
    const deferring = await startCaptureServer({
      refuse: { addresses: ['a@origin.test'], code: 451 },
    });
    try {
      const path = join(dir, 'm5.eml');
      await writeFile(path, SPOOLED);
      await writeFile(`${path}.json`, '{}');
      const recorded: string[] = [];
      const retried: string[] = [];
      const forwarder = new SmtpForwarder({
        domain: 'alias.test',
        resolver: () => Promise.resolve(null),
        transport: { relays: [parseRelay(`smtp://127.0.0.1:${deferring.port}`)] },
      });
      forwarders.push(forwarder);
      let expired = false;
      const settle = createDeadDeliveryHandler({
        forwarder,
        record: (alias, outcome) => {
          recorded.push(`${alias} ${outcome}`);
          return Promise.resolve();
        },
        retry: (job) => {
          retried.push(job.messageId);
          return Promise.resolve();
        },
        expired: () => expired,
      });
      const job = delivery(path, { messageId: 'm5' });
      expect(await settle(job, 'lease lost')).toBe('retried');
      expect(retried).toEqual(['m5']);
      expect(recorded).toEqual([]);
      expect(await readdir(dir)).toContain('m5.eml');

      expired = true;
      expect(await settle(job, 'lease lost')).toBe('lost');
      expect(retried).toEqual(['m5']);
      expect(recorded).toEqual(['shop+tag@alias.test lost']);
      expect((await readdir(dir)).filter((name) => name.startsWith('m5'))).toEqual([]);
      // Both tries of the DSN reached the relay, and it took neither.
      expect(deferring.refused).toEqual(['a@origin.test', 'a@origin.test']);
      expect(deferring.messages).toHaveLength(0);
    } finally {
      await deferring.close();
    }
  });
});

describe('the worker settles every dead delivery', () => {
  let harness: ProcessHarness;
  let aliasId = '';
  let queue: SyncQueue<QueuedDelivery>;
  let metricsPort = 0;

  beforeAll(async () => {
    harness = await startProcessHarness('dead', {
      env: { SMTP_DELIVERY: 'queued', WORKER_METRICS_PORT: '0' },
    });
    ({ aliasId } = await seedAlias(harness.database, {
      email: 'dead@example.org',
      localPart: 'shop',
      destinations: ['private@dest.test'],
    }));
    await harness.start('worker');
    metricsPort = harness.supervisor.metricsPort('worker') ?? 0;
    queue = new SyncQueue<QueuedDelivery>({
      name: DELIVERY_QUEUE,
      backend: new RedisBackend({ redis: harness.redis, prefix: `${harness.prefix}sq:` }),
    });
  }, 60_000);

  afterAll(async () => {
    await queue.close();
    await harness.close();
  });

  const logRows = (outcome: string) =>
    harness.database.db
      .selectFrom('forwarding_log')
      .select(['outcome', 'reason', 'message_id'])
      .where('alias_id', '=', aliasId)
      .where('outcome', '=', outcome)
      .execute();

  it('logs and counts a dead job whose spool file is missing as lost, with the reason', async () => {
    await queue.add(
      delivery(join(harness.dataDir, 'spool', 'gone.eml'), {
        messageId: 'gone',
        aliases: ['shop@alias.test'],
      }),
      { attempts: 1 },
    );
    const rows = await eventually(async () => {
      const found = await logRows('lost');
      return found.length > 0 ? found : undefined;
    }, 20_000);
    expect(rows).toEqual([
      {
        outcome: 'lost',
        reason: expect.stringMatching(/^spool unreadable \(ENOENT\)/) as string,
        message_id: 'gone',
      },
    ]);
    expect(harness.capture.messages.some((m) => m.to.includes('a@origin.test'))).toBe(false);
    const metrics = await (await fetch(`http://127.0.0.1:${String(metricsPort)}/metrics`)).text();
    expect(metrics).toMatch(/smtp_messages_total\{[^}]*outcome="lost"[^}]*\} 1/);
  }, 30_000);

  it('bounces a dead job that failed for another reason when its spool is readable', async () => {
    const path = join(harness.dataDir, 'corrupt.eml');
    await writeFile(path, SPOOLED);
    // A corrupt delivery-state file makes the delivery throw before any relay is asked.
    await writeFile(`${path}.delivered`, '{not json');
    await queue.add(delivery(path, { messageId: 'corrupt', aliases: ['shop@alias.test'] }), {
      attempts: 1,
    });
    const dsn = await eventually(
      () => harness.capture.messages.find((m) => m.to.includes('a@origin.test')),
      20_000,
    );
    expect(dsn.from).toBe('');
    expect(dsn.data.toString('utf8')).toContain('Final-Recipient: rfc822; shop@alias.test');
    expect(dsn.data.toString('utf8')).not.toContain('private@dest.test');
    expect(harness.capture.messages.some((m) => m.to.includes('private@dest.test'))).toBe(false);
    const rows = await eventually(async () => {
      const found = await logRows('bounced');
      return found.length > 0 ? found : undefined;
    });
    expect(rows.map((row) => row.message_id)).toEqual(['corrupt']);
  }, 30_000);
});
