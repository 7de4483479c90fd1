import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AliasRepository } from '../src/aliases.js';
import { DomainRepository } from '../src/domains.js';
import { eventually } from './support/capture.js';
import type { TestDatabase } from './support/database.js';
import { dkimVerdicts } from './support/dkim.js';
import { seedAlias, startProcessHarness } from './support/processes.js';
import type { ProcessHarness } from './support/processes.js';
import { swaks } from './support/swaks.js';

let harness: ProcessHarness;
let database: TestDatabase;
let capture: ProcessHarness['capture'];
let smtpPort = 0;

beforeAll(async () => {
  // No REDIS_URL: in-memory fallbacks, and the SMTP process relays synchronously.
  harness = await startProcessHarness('dkim', {
    env: { REDIS_URL: undefined, REDIS_KEY_PREFIX: undefined, SMTP_FROM_REWRITE: 'always' },
  });
  ({ database, capture } = harness);
  const { userId } = await seedAlias(database, {
    email: 'd@example.org',
    localPart: 'shared',
    destinations: ['one@dest.test'],
  });
  const custom = await new DomainRepository(database.db, { mxHost: 'mx.alias.test' }).add(
    userId,
    'custom.test',
  );
  await database.db
    .updateTable('domains')
    .set({ verified_at: 2 })
    .where('id', '=', custom.id)
    .execute();
  await new AliasRepository(database.db).create({
    userId,
    domainId: custom.id,
    localPart: 'shop',
    destinations: ['two@dest.test'],
  });
  smtpPort = await harness.start('smtp');
}, 60_000);

afterAll(() => harness.close());

describe('DKIM per domain: the SMTP process signs with the alias domain key from PostgreSQL', () => {
  it('signs mail to a custom-domain alias with that domain key (d=custom.test), which mailauth verifies', async () => {
    expect((await swaks(smtpPort, 'sender@origin.test', 'shop@custom.test')).code).toBe(0);
    const forwarded = await eventually(() =>
      capture.messages.find((m) => m.to.includes('two@dest.test')),
    );
    expect(forwarded.data.toString('utf8')).toContain('<shop@custom.test>');
    expect(await dkimVerdicts(database, forwarded)).toEqual([['custom.test', 'pass']]);
  }, 30_000);

  it('still signs mail to a shared-domain alias with the shared key (d=alias.test)', async () => {
    expect((await swaks(smtpPort, 'sender@origin.test', 'shared@alias.test')).code).toBe(0);
    const forwarded = await eventually(() =>
      capture.messages.find((m) => m.to.includes('one@dest.test')),
    );
    expect(await dkimVerdicts(database, forwarded)).toEqual([['alias.test', 'pass']]);
  }, 30_000);
});
