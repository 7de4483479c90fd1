import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from './support/capture.js';
import { seedAlias, startProcessHarness } from './support/processes.js';
import type { ProcessHarness } from './support/processes.js';
import { deleteKeys } from './support/redis.js';
import { swaks } from './support/swaks.js';

let harness: ProcessHarness;
let smtpPort = 0;

beforeAll(async () => {
  harness = await startProcessHarness('recovery', {
    env: { SMTP_DELIVERY: 'queued' },
    supervisor: { restartDelayMs: 100 },
  });
  await seedAlias(harness.database, {
    email: 'r@example.org',
    localPart: 'kept',
    destinations: ['far@dest.test'],
  });
  smtpPort = await harness.start('smtp');
}, 60_000);

afterAll(() => harness.close());

const spooled = async (): Promise<string[]> =>
  (await readdir(join(harness.dataDir, 'spool'))).filter((name) => name.endsWith('.eml'));

describe('queued delivery: the spool outlives the queue', () => {
  it('delivers a message that got 250 even when Redis lost its job: the restarted SMTP process queues the spool again', async () => {
    expect((await swaks(smtpPort, 'sender@origin.test', 'kept@alias.test')).code).toBe(0);
    expect(await spooled()).toHaveLength(1);
    // Redis restarts without its data: the delivery queue's job is gone, the spool file is not.
    await deleteKeys(harness.redis, `${harness.prefix}sq:`);
    const before = harness.supervisor.pid('smtp');
    process.kill(before!, 'SIGKILL');
    await eventually(() => {
      const pid = harness.supervisor.pid('smtp');
      return pid !== undefined && pid !== before ? pid : undefined;
    }, 20_000);
    await harness.start('worker');
    const delivered = await eventually(
      () => harness.capture.messages.find((message) => message.to.includes('far@dest.test')),
      30_000,
    );
    expect(delivered.data.toString('utf8')).toContain('DKIM-Signature');
    await eventually(async () => ((await spooled()).length === 0 ? true : undefined));
    // Once, and the SMTP process's next start finds nothing left to queue.
    expect(
      harness.capture.messages.filter((message) => message.to.includes('far@dest.test')),
    ).toHaveLength(1);
  }, 60_000);
});
