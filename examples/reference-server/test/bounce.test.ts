import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeliveryHandler } from '../src/worker.js';
import type { DeliveryHandlerOptions } from '../src/worker.js';
import { eventually, startCaptureServer } from './support/capture.js';
import { dkimVerdictsFor } from './support/dkim.js';
import { seedAlias, startProcessHarness } from './support/processes.js';
import type { ProcessHarness } from './support/processes.js';
import { swaks } from './support/swaks.js';

let harness: ProcessHarness;
let smtpPort = 0;
let aliasId = '';

beforeAll(async () => {
  // The relay refuses the alias's destination for good, and takes everything else (the DSN).
  harness = await startProcessHarness('bounce', {
    capture: { refuse: { addresses: ['gone@dest.test'], code: 550 } },
    env: { SMTP_DELIVERY: 'queued', WORKER_METRICS_PORT: '0' },
  });
  ({ aliasId } = await seedAlias(harness.database, {
    email: 'b@example.org',
    localPart: 'bouncy',
    destinations: ['gone@dest.test'],
  }));
  smtpPort = await harness.start('smtp');
  await harness.start('worker', { SMTP_PORT: String(smtpPort) });
}, 60_000);

afterAll(() => harness.close());

describe('bounces: a queued delivery the relay refuses with 550', () => {
  it('sends a DSN to the original sender naming the alias, never the destination, logs and counts it', async () => {
    const sent = await swaks(smtpPort, 'sender@origin.test', 'bouncy+tag@alias.test');
    expect(sent.code).toBe(0);
    const dsn = await eventually(
      () => harness.capture.messages.find((message) => message.to.includes('sender@origin.test')),
      20_000,
    );
    // A null reverse path (no bounce loops), to the SRS-reversed sender, as a multipart/report.
    expect(dsn.from).toBe('');
    const text = dsn.data.toString('utf8');
    expect(text).toContain('From: Mail Delivery System <MAILER-DAEMON@alias.test>');
    expect(text).toContain('report-type=delivery-status');
    expect(text).toContain('Final-Recipient: rfc822; bouncy+tag@alias.test');
    expect(text).toMatch(/Status: 5\.\d\.\d/);
    expect(text).not.toContain('gone@dest.test');
    expect(harness.capture.messages.some((message) => message.to.includes('gone@dest.test'))).toBe(
      false,
    );
    // Signed with the shared domain's key, so the DSN passes DMARC for alias.test.
    const key = await harness.database.db
      .selectFrom('domains')
      .select(['dkim_selector', 'dkim_public_key'])
      .where('name', '=', 'alias.test')
      .executeTakeFirstOrThrow();
    expect(
      await dkimVerdictsFor(dsn, [
        { name: 'alias.test', selector: key.dkim_selector, publicKey: key.dkim_public_key },
      ]),
    ).toEqual([['alias.test', 'pass']]);

    const rows = await eventually(async () => {
      const found = await harness.database.db
        .selectFrom('forwarding_log')
        .select(['outcome', 'reason', 'message_id'])
        .where('alias_id', '=', aliasId)
        .where('outcome', '=', 'bounced')
        .execute();
      return found.length > 0 ? found : undefined;
    });
    expect(rows).toHaveLength(1);
    expect(rows[0]?.reason).toMatch(/550/);
    expect(rows[0]?.reason).not.toContain('gone@dest.test');
    expect(rows[0]?.message_id).not.toBeNull();

    const metricsPort = harness.supervisor.metricsPort('worker');
    expect(metricsPort).toBeGreaterThan(0);
    const metrics = await (await fetch(`http://127.0.0.1:${String(metricsPort)}/metrics`)).text();
    expect(metrics).toMatch(/smtp_messages_total\{[^}]*outcome="bounced"[^}]*\} 1/);
    // The spooled copy is removed once the job is settled by the bounce.
    await eventually(async () =>
      (await readdir(join(harness.dataDir, 'spool'))).some((name) => name.endsWith('.eml'))
        ? undefined
        : true,
    );
  }, 40_000);
});

/**
 * A delivery handler on `relay` with one spooled message `id` (to `recipient`, written to alias
 * `alias`) in a fresh directory; `recorded` collects its bounce rows. `close()` tears it all down.
 */
async function spooledDelivery(
  relay: { port: number; close(): Promise<void> },
  id: string,
  recipient: string,
  alias: string,
  options: Pick<DeliveryHandlerOptions, 'lifetimeMs' | 'bounceLifetimeMs' | 'now'> = {},
  queuedAt?: number,
) {
  const dir = await mkdtemp(join(tmpdir(), 'postern-bounce-'));
  const recorded: { alias: string; reason: string }[] = [];
  const handler = createDeliveryHandler({
    ...options,
    domain: 'alias.test',
    relays: [{ host: '127.0.0.1', port: relay.port }],
    recordBounce: (to, details) => {
      recorded.push({ alias: to, reason: details.reason });
      return Promise.resolve();
    },
  });
  const path = join(dir, `${id}.eml`);
  await writeFile(path, `From: a@origin.test\r\nSubject: ${id}\r\n\r\nbody\r\n`);
  const payload = {
    messageId: id,
    path,
    mailFrom: 'SRS0=x=yy=origin.test=a@alias.test',
    originalSender: 'a@origin.test',
    recipients: [recipient],
    aliases: [alias],
    ...(queuedAt === undefined ? {} : { queuedAt }),
  };
  const job = { id, key: null, payload, createdAt: 0, maxAttempts: 3 };
  return {
    dir,
    handler,
    recorded,
    job,
    close: async () => {
      await handler.close();
      await relay.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

describe('bounces: a second run of a message while the first is still sending', () => {
  it('records the bounce of the first run once, and the second run sends nothing', async () => {
    // Refuses the destination at once; takes the DSN slowly, so the first run is still sending.
    const relay = await startCaptureServer({
      refuse: { addresses: ['gone@dest.test'], code: 550 },
      delayMs: 400,
    });
    const { dir, handler, recorded, job, close } = await spooledDelivery(
      relay,
      'm2',
      'gone@dest.test',
      'twice@alias.test',
    );
    try {
      const first = handler.handle({ ...job, attempt: 1 });
      await eventually(() =>
        readdir(dir).then((names) => names.includes('m2.eml.claim') || undefined),
      );
      // sync-queue's handler timeout ran out on the first run and started a second one.
      await expect(handler.handle({ ...job, attempt: 2 })).rejects.toMatchObject({
        code: 'DELIVERY_FAILED',
        temporary: true,
      });
      await first;
      expect(relay.messages.map((message) => message.to)).toEqual([['a@origin.test']]);
      expect(recorded.map((row) => row.alias)).toEqual(['twice@alias.test']);
      // Only the marks of settled jobs stay (@postern/smtp-forward keeps them for 7 days).
      expect(await readdir(dir)).toEqual(['settled']);
    } finally {
      await close();
    }
  }, 30_000);
});

describe('bounces: retries exhausted', () => {
  it('defers a temporary refusal while attempts remain, and bounces with 4.4.7 on the last attempt', async () => {
    const relay = await startCaptureServer({
      refuse: { addresses: ['busy@dest.test'], code: 450 },
    });
    const { dir, handler, recorded, job, close } = await spooledDelivery(
      relay,
      'm1',
      'busy@dest.test',
      'later@alias.test',
    );
    try {
      await expect(handler.handle({ ...job, attempt: 1 })).rejects.toMatchObject({
        code: 'DELIVERY_FAILED',
      });
      expect(recorded).toHaveLength(0);
      expect(relay.messages).toHaveLength(0);

      await handler.handle({ ...job, attempt: 3 });
      const dsn = relay.messages.find((message) => message.to.includes('a@origin.test'));
      expect(dsn?.data.toString('utf8')).toContain('Status: 4.4.7');
      expect(dsn?.data.toString('utf8')).not.toContain('busy@dest.test');
      expect(recorded).toEqual([
        { alias: 'later@alias.test', reason: expect.stringMatching(/450/) as string },
      ]);
      expect(recorded[0]?.reason).not.toContain('busy@dest.test');
      // Only the marks of settled jobs stay (@postern/smtp-forward keeps them for 7 days).
      expect(await readdir(dir)).toEqual(['settled']);
    } finally {
      await close();
    }
  }, 30_000);

  it('makes a run the last once the message is older than the queue lifetime, whatever runs remain', async () => {
    const relay = await startCaptureServer({
      refuse: { addresses: ['busy@dest.test'], code: 450 },
    });
    const now = 10_000_000;
    const { handler, recorded, job, close } = await spooledDelivery(
      relay,
      'm3',
      'busy@dest.test',
      'aged@alias.test',
      { lifetimeMs: 60_000, now: () => now },
    );
    try {
      const runs = { ...job, maxAttempts: 100 };
      // One ms short of the lifetime: a temporary refusal is retried, nothing is sent.
      await expect(
        handler.handle({ ...runs, attempt: 1, createdAt: now - 59_999 }),
      ).rejects.toMatchObject({ code: 'DELIVERY_FAILED', temporary: true });
      expect(relay.messages).toHaveLength(0);
      expect(recorded).toHaveLength(0);

      // At the lifetime, with 97 runs left, the same refusal bounces.
      await handler.handle({ ...runs, attempt: 3, createdAt: now - 60_000 });
      const dsn = relay.messages.find((message) => message.to.includes('a@origin.test'));
      expect(dsn?.data.toString('utf8')).toContain('Status: 4.4.7');
      expect(recorded.map((row) => row.alias)).toEqual(['aged@alias.test']);
    } finally {
      await close();
    }
  }, 30_000);

  it('counts the lifetime from when the message was spooled, not from when the queue last added it', async () => {
    const relay = await startCaptureServer({
      refuse: { addresses: ['busy@dest.test'], code: 450 },
    });
    const now = 10_000_000;
    const { handler, recorded, job, close } = await spooledDelivery(
      relay,
      'm5',
      'busy@dest.test',
      'requeued@alias.test',
      { lifetimeMs: 60_000, now: () => now },
      now - 60_000,
    );
    try {
      // Added again a moment ago by an SMTP start (pendingSpool), but spooled a lifetime ago.
      await handler.handle({ ...job, attempt: 1, maxAttempts: 100, createdAt: now - 5 });
      const dsn = relay.messages.find((message) => message.to.includes('a@origin.test'));
      expect(dsn?.data.toString('utf8')).toContain('Status: 4.4.7');
      expect(recorded.map((row) => row.alias)).toEqual(['requeued@alias.test']);
    } finally {
      await close();
    }
  }, 30_000);

  it('retries a DSN the relays defer for the bounce lifetime, then gives the job to the dead letters', async () => {
    const relay = await startCaptureServer({
      refuse: { addresses: ['busy@dest.test', 'a@origin.test'], code: 450 },
    });
    const now = 10_000_000;
    const { handler, recorded, job, close } = await spooledDelivery(
      relay,
      'm6',
      'busy@dest.test',
      'unlucky@alias.test',
      { lifetimeMs: 60_000, bounceLifetimeMs: 30_000, now: () => now },
    );
    try {
      const runs = { ...job, maxAttempts: 100 };
      // Past the lifetime the destination is bounced, but the DSN is deferred: retried.
      await expect(
        handler.handle({ ...runs, attempt: 5, createdAt: now - 89_999 }),
      ).rejects.toMatchObject({ code: 'DELIVERY_FAILED', temporary: true });
      // At the end of the bounce lifetime: no more runs, the dead letters settle it.
      await expect(
        handler.handle({ ...runs, attempt: 6, createdAt: now - 90_000 }),
      ).rejects.toMatchObject({ code: 'PERMANENT_FAILURE' });
      expect(relay.refused.filter((address) => address === 'a@origin.test')).toHaveLength(2);
      expect(relay.messages).toHaveLength(0);
      expect(recorded).toHaveLength(0);
    } finally {
      await close();
    }
  }, 30_000);

  it('sends a job that no run can settle (its spool is gone) to the dead letters at once', async () => {
    const relay = await startCaptureServer();
    const { handler, job, close } = await spooledDelivery(
      relay,
      'm4',
      'x@dest.test',
      'gone@alias.test',
    );
    try {
      await rm(job.payload.path);
      await expect(handler.handle({ ...job, attempt: 1, maxAttempts: 100 })).rejects.toMatchObject({
        code: 'PERMANENT_FAILURE',
        message: expect.stringContaining('never settled') as string,
      });
      expect(relay.messages).toHaveLength(0);
    } finally {
      await close();
    }
  }, 30_000);
});
