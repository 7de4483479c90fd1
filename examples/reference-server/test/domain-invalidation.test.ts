import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisAliasNotifier } from '../src/alias-resolver.js';
import { AliasRepository } from '../src/aliases.js';
import { DomainRepository } from '../src/domains.js';
import { eventually } from './support/capture.js';
import { dkimVerdicts } from './support/dkim.js';
import { seedAlias, startProcessHarness } from './support/processes.js';
import type { ProcessHarness } from './support/processes.js';
import { swaks } from './support/swaks.js';

let harness: ProcessHarness;
let domains: DomainRepository;
let aliases: AliasRepository;
let userId = '';
const ports: number[] = [];

/** Adds custom.test (a fresh DKIM key each time), verified, with shop@custom.test forwarding to `to`. */
async function addCustomDomain(to: string): Promise<string> {
  const custom = await domains.add(userId, 'custom.test');
  await harness.database.db
    .updateTable('domains')
    .set({ verified_at: 2 })
    .where('id', '=', custom.id)
    .execute();
  await aliases.create({ userId, domainId: custom.id, localPart: 'shop', destinations: [to] });
  return custom.id;
}

async function forwardThroughEach(to: string): Promise<void> {
  for (const port of ports) {
    const before = harness.capture.messages.length;
    expect((await swaks(port, 'sender@origin.test', 'shop@custom.test')).code).toBe(0);
    const forwarded = await eventually(() =>
      harness.capture.messages.slice(before).find((m) => m.to.length > 0),
    );
    expect(forwarded.to).toEqual([to]);
    expect(await dkimVerdicts(harness.database, forwarded)).toEqual([['custom.test', 'pass']]);
  }
}

beforeAll(async () => {
  // A long cache TTL: only the Redis message can make the processes drop what they hold.
  harness = await startProcessHarness('domaininv', {
    env: { SMTP_ALIAS_CACHE_TTL_MS: '10m', SMTP_FROM_REWRITE: 'always' },
  });
  ({ userId } = await seedAlias(harness.database, {
    email: 'd@example.org',
    localPart: 'shared',
    destinations: ['one@dest.test'],
  }));
  domains = new DomainRepository(harness.database.db, { mxHost: 'mx.alias.test' });
  aliases = new AliasRepository(harness.database.db);
  for (const name of ['smtp-1', 'smtp-2']) ports.push(await harness.start('smtp', {}, name));
}, 60_000);

afterAll(() => harness.close());

describe('domain changes reach every SMTP process over Redis pub/sub', () => {
  it('a deleted and re-added domain signs with its new key and routes to its new alias on both processes at once', async () => {
    const first = await addCustomDomain('old@dest.test');
    // Both processes now cache custom.test's key and the route of shop@custom.test.
    await forwardThroughEach('old@dest.test');

    // What DELETE /domains/:id does: delete (aliases cascade), then publish the domain's name.
    const notifier = new RedisAliasNotifier(harness.redis, `${harness.prefix}domain-changed`);
    await notifier.changed(await domains.delete(userId, first));
    await addCustomDomain('new@dest.test');

    // A stale key would fail mailauth against the new public key; a stale route would go to old@.
    await forwardThroughEach('new@dest.test');
  }, 60_000);
});

describe('forwarding counts', () => {
  it('counts a message on its alias even when another recipient of it was refused', async () => {
    const { aliasId } = await seedAlias(harness.database, {
      email: 'counted@example.org',
      localPart: 'counted',
      destinations: ['counted@dest.test'],
    });
    const sent = await swaks(
      ports[0]!,
      'sender@origin.test',
      'counted@alias.test,nobody@alias.test',
    );
    expect(sent.output).toMatch(/<\*\* 550/);
    expect(sent.output).toMatch(/<- {2}250 /);
    const row = await eventually(async () => {
      const found = await harness.database.db
        .selectFrom('aliases')
        .select('forwarded_count')
        .where('id', '=', aliasId)
        .executeTakeFirstOrThrow();
      return Number(found.forwarded_count) > 0 ? found : undefined;
    });
    expect(Number(row.forwarded_count)).toBe(1);
  }, 30_000);
});
