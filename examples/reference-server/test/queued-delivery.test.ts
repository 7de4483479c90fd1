import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from './support/capture.js';
import { seedAlias, startProcessHarness } from './support/processes.js';
import type { ProcessHarness } from './support/processes.js';
import { swaks } from './support/swaks.js';

let harness: ProcessHarness;
let smtpPort = 0;

beforeAll(async () => {
  harness = await startProcessHarness('queued', { env: { SMTP_DELIVERY: 'queued' } });
  await seedAlias(harness.database, {
    email: 'q@example.org',
    localPart: 'queued',
    destinations: ['far@dest.test'],
  });
  smtpPort = await harness.start('smtp');
}, 60_000);

afterAll(() => harness.close());

describe('queued delivery: smtp spools and enqueues, the worker relays', () => {
  it('answers 250 with no worker running, keeps the message spooled, and delivers it once a worker starts', async () => {
    const sent = await swaks(smtpPort, 'sender@origin.test', 'queued@alias.test');
    expect(sent.code).toBe(0);
    expect(harness.capture.messages).toHaveLength(0);
    expect(
      (await readdir(join(harness.dataDir, 'spool'))).filter((name) => name.endsWith('.eml')),
    ).toHaveLength(1);

    await harness.start('worker', { SMTP_PORT: String(smtpPort) });
    const delivered = await eventually(
      () => harness.capture.messages.find((message) => message.to.includes('far@dest.test')),
      20_000,
    );
    expect(delivered.from).toMatch(/^SRS0=.+@alias\.test$/i);
    expect(delivered.data.toString('utf8')).toContain('DKIM-Signature');
    // The worker removes the spool file once the relay took the message.
    await eventually(async () =>
      (await readdir(join(harness.dataDir, 'spool'))).some((name) => name.endsWith('.eml'))
        ? undefined
        : true,
    );
  }, 40_000);
});
