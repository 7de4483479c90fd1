import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from './support/capture.js';
import { seedAlias, startProcessHarness } from './support/processes.js';
import type { ProcessHarness } from './support/processes.js';
import { swaks } from './support/swaks.js';

let harness: ProcessHarness;
let smtpPort = 0;

beforeAll(async () => {
  // The relay defers the alias's destination every time, and takes everything else (the DSN).
  harness = await startProcessHarness('lifetime', {
    capture: { refuse: { addresses: ['busy@dest.test'], code: 450 } },
    env: {
      SMTP_DELIVERY: 'queued',
      SMTP_QUEUE_LIFETIME_MS: '3s',
      SMTP_RETRY_DELAY_MS: '200ms',
      SMTP_RETRY_MAX_DELAY_MS: '400ms',
    },
  });
  await seedAlias(harness.database, {
    email: 'l@example.org',
    localPart: 'patient',
    destinations: ['busy@dest.test'],
  });
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
});
