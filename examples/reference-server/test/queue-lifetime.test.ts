import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from './support/capture.js';
import { seedAlias, startProcessHarness } from './support/processes.js';
import type { ProcessHarness } from './support/processes.js';
import { swaks } from './support/swaks.js';

let harness: ProcessHarness;
let smtpPort = 0;
let aliasId = '';

beforeAll(async () => {
  // The relay defers the alias's destination every time, and the DSN to one sender; it takes
  // everything else (other DSNs).
  harness = await startProcessHarness('lifetime', {
    capture: { refuse: { addresses: ['busy@dest.test', 'unreachable@origin.test'], code: 450 } },
    supervisor: { restartDelayMs: 100 },
    env: {
      SMTP_DELIVERY: 'queued',
      SMTP_QUEUE_LIFETIME_MS: '3s',
      SMTP_BOUNCE_LIFETIME_MS: '2s',
      SMTP_RETRY_DELAY_MS: '200ms',
      SMTP_RETRY_MAX_DELAY_MS: '400ms',
    },
  });
  ({ aliasId } = await seedAlias(harness.database, {
    email: 'l@example.org',
    localPart: 'patient',
    destinations: ['busy@dest.test'],
  }));
  smtpPort = await harness.start('smtp');
  await harness.start('worker', { SMTP_PORT: String(smtpPort) });
}, 60_000);

afterAll(() => harness.close());

describe('queued delivery: a destination that keeps deferring', () => {
  it('is retried on the configured schedule until the queue lifetime, then bounced once with 4.4.7', async () => {
    const sentAt = Date.now();
    const sent = await swaks(smtpPort, 'sender@origin.test', 'patient@alias.test');
    expect(sent.code).toBe(0);
    const dsn = await eventually(
      () => harness.capture.messages.find((message) => message.to.includes('sender@origin.test')),
      20_000,
    );
    const bouncedAfterMs = Date.now() - sentAt;
    // Not after a fixed count of runs (sync-queue's default is 5), but once the message is 3 s old.
    expect(bouncedAfterMs).toBeGreaterThanOrEqual(3_000);
    expect(harness.capture.refused.length).toBeGreaterThan(5);
    expect(harness.capture.refused.every((address) => address === 'busy@dest.test')).toBe(true);
    expect(dsn.from).toBe('');
    expect(dsn.data.toString('utf8')).toContain('Status: 4.4.7');
    expect(dsn.data.toString('utf8')).not.toContain('busy@dest.test');
    // Settled: no further tries, no second DSN.
    const refusals = harness.capture.refused.length;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(harness.capture.refused).toHaveLength(refusals);
    expect(
      harness.capture.messages.filter((message) => message.to.includes('sender@origin.test')),
    ).toHaveLength(1);
  }, 40_000);

  it('retries a DSN the relay defers for the bounce lifetime, then records the loss once and drops the spool, so no start queues it again', async () => {
    const dsnRefusals = (): number =>
      harness.capture.refused.filter((address) => address === 'unreachable@origin.test').length;
    const sent = await swaks(smtpPort, 'unreachable@origin.test', 'patient@alias.test');
    expect(sent.code).toBe(0);
    const rows = await eventually(async () => {
      const found = await harness.database.db
        .selectFrom('forwarding_log')
        .select(['outcome', 'reason'])
        .where('alias_id', '=', aliasId)
        .where('outcome', '=', 'lost')
        .execute();
      return found.length > 0 ? found : undefined;
    }, 30_000);
    expect(rows).toEqual([
      { outcome: 'lost', reason: expect.stringMatching(/^bounce undeliverable/) as string },
    ]);
    // The DSN was tried again after the lifetime, not once.
    expect(dsnRefusals()).toBeGreaterThan(2);
    const spool = join(harness.dataDir, 'spool');
    await eventually(async () =>
      (await readdir(spool)).some((name) => name.endsWith('.eml')) ? undefined : true,
    );
    // A restart of the SMTP process finds nothing to queue again: no more tries, no second row.
    const refusals = dsnRefusals();
    const ready = new Promise<void>((resolve) => {
      const onReady = (name: string): void => {
        if (name !== 'smtp') return;
        harness.supervisor.off('ready', onReady);
        resolve();
      };
      harness.supervisor.on('ready', onReady);
    });
    process.kill(harness.supervisor.pid('smtp')!, 'SIGKILL');
    await ready;
    // The restarted process queues the spool in the background once it listens; give a worker
    // time to run anything it queued (retries come every 200-400 ms here).
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(dsnRefusals()).toBe(refusals);
    const lost = await harness.database.db
      .selectFrom('forwarding_log')
      .select('outcome')
      .where('alias_id', '=', aliasId)
      .where('outcome', '=', 'lost')
      .execute();
    expect(lost).toHaveLength(1);
  }, 60_000);
});
