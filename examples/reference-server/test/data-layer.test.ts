import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AliasRepository } from '../src/aliases.js';
import { AuditLog } from '../src/audit.js';
import { migrateToLatest } from '../src/db/migrations.js';
import { DomainRepository } from '../src/domains.js';
import type { DnsResolver } from '../src/domains.js';
import { ServerError } from '../src/errors.js';
import { createTestDatabase } from './support/database.js';
import type { TestDatabase } from './support/database.js';

const fakeKey = () => Promise.resolve({ privateKeyPem: 'PRIVATE', publicKeyBase64: 'PUBLICKEY' });

let database: TestDatabase;
let aliases: AliasRepository;
let domains: DomainRepository;
let sharedDomainId: string;
let clock = 1_700_000_000_000;

async function createUser(email = `${randomUUID()}@example.test`): Promise<string> {
  const id = randomUUID();
  await database.db
    .insertInto('users')
    .values({ id, email, password_hash: 'x', email_verified: true, created_at: clock })
    .execute();
  return id;
}

beforeAll(async () => {
  database = await createTestDatabase('rs_data');
  aliases = new AliasRepository(database.db, { now: () => clock });
  domains = new DomainRepository(database.db, {
    mxHost: 'mx.postern.test',
    now: () => clock,
    generateDkimKey: fakeKey,
  });
  sharedDomainId = (await domains.ensureShared('postern.test')).id;
});

afterAll(async () => {
  await database.drop();
});

describe('migrations', () => {
  it('are idempotent: a second run applies nothing', async () => {
    const result = await migrateToLatest(database.db);
    expect(result.results).toEqual([]);
  });
});

describe('aliases', () => {
  it('two concurrent creations of one alias: exactly one succeeds, the other is ALIAS_TAKEN', async () => {
    const userA = await createUser();
    const userB = await createUser();
    const results = await Promise.allSettled([
      aliases.create({
        userId: userA,
        domainId: sharedDomainId,
        localPart: 'race',
        destinations: ['a@example.org'],
      }),
      aliases.create({
        userId: userB,
        domainId: sharedDomainId,
        localPart: 'race',
        destinations: ['b@example.org'],
      }),
    ]);
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((result) => result.status === 'rejected');
    expect(ServerError.isInstance(rejected?.reason)).toBe(true);
    expect((rejected?.reason as ServerError).code).toBe('ALIAS_TAKEN');
    const rows = await database.db
      .selectFrom('aliases')
      .select('id')
      .where('address', '=', 'race@postern.test')
      .execute();
    expect(rows).toHaveLength(1);
  });

  it('the uniqueness is the database’s: a direct duplicate insert fails too', async () => {
    const user = await createUser();
    await aliases.create({
      userId: user,
      domainId: sharedDomainId,
      localPart: 'direct',
      destinations: ['a@example.org'],
    });
    await expect(
      database.db
        .insertInto('aliases')
        .values({
          id: randomUUID(),
          user_id: user,
          domain_id: sharedDomainId,
          local_part: 'direct',
          address: 'direct@postern.test',
          enabled: true,
          destinations: ['x@example.org'],
          last_seen_at: null,
          created_at: clock,
        })
        .execute(),
    ).rejects.toMatchObject({ code: '23505' });
  });

  it('creates random local parts and lower-cases chosen ones', async () => {
    const user = await createUser();
    const random = await aliases.create({
      userId: user,
      domainId: sharedDomainId,
      destinations: ['Me@Example.org'],
    });
    expect(random.address).toMatch(/^[a-z2-7]{10}@postern\.test$/);
    expect(random.destinations).toEqual(['me@example.org']);
    const chosen = await aliases.create({
      userId: user,
      domainId: sharedDomainId,
      localPart: 'Shop.Mail',
      destinations: ['me@example.org'],
    });
    expect(chosen.address).toBe('shop.mail@postern.test');
  });

  it('rejects a bad local part with the field named', async () => {
    const user = await createUser();
    await expect(
      aliases.create({
        userId: user,
        domainId: sharedDomainId,
        localPart: 'a b',
        destinations: ['x@example.org'],
      }),
    ).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      field: 'localPart',
      status: 400,
    });
  });

  it('refuses unverified and foreign domains', async () => {
    const owner = await createUser();
    const other = await createUser();
    const custom = await domains.add(owner, `c${randomUUID().slice(0, 8)}.example.org`);
    await expect(
      aliases.create({
        userId: owner,
        domainId: custom.id,
        localPart: 'x',
        destinations: ['x@example.org'],
      }),
    ).rejects.toMatchObject({ code: 'DOMAIN_NOT_VERIFIED' });
    await expect(
      aliases.create({
        userId: other,
        domainId: custom.id,
        localPart: 'x',
        destinations: ['x@example.org'],
      }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('pages with a cursor, oldest first, without gaps or repeats', async () => {
    const user = await createUser();
    const created: string[] = [];
    for (let index = 0; index < 5; index += 1) {
      clock += index % 2; // two aliases share a timestamp: the id breaks the tie
      created.push(
        (
          await aliases.create({
            userId: user,
            domainId: sharedDomainId,
            destinations: ['p@example.org'],
          })
        ).id,
      );
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    for (;;) {
      const page = await aliases.list(
        user,
        cursor === undefined ? { limit: 2 } : { limit: 2, cursor },
      );
      seen.push(...page.items.map((item) => item.id));
      if (page.nextCursor === null) break;
      cursor = page.nextCursor;
    }
    expect(new Set(seen)).toEqual(new Set(created));
    expect(seen).toHaveLength(5);
    await expect(aliases.list(user, { cursor: 'garbage' })).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      field: 'cursor',
    });
  });

  it('enables, disables, sets destinations, counts outcomes, and hides other users’ aliases', async () => {
    const user = await createUser();
    const other = await createUser();
    const alias = await aliases.create({
      userId: user,
      domainId: sharedDomainId,
      destinations: ['a@example.org'],
    });
    expect((await aliases.update(user, alias.id, { enabled: false })).enabled).toBe(false);
    expect((await aliases.findRoute(alias.address.toUpperCase()))?.enabled).toBe(false);
    expect(
      (await aliases.update(user, alias.id, { destinations: ['B@example.org', 'c@example.org'] }))
        .destinations,
    ).toEqual(['b@example.org', 'c@example.org']);
    expect((await aliases.update(user, alias.id, {})).id).toBe(alias.id);
    await expect(aliases.update(other, alias.id, { enabled: true })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(aliases.get(other, alias.id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await aliases.recordOutcome(alias.id, 'forwarded', { messageId: '<m1@x>' });
    await aliases.recordOutcome(alias.id, 'rejected', { reason: 'disabled' });
    await aliases.recordOutcome(randomUUID(), 'forwarded');
    const after = await aliases.get(user, alias.id);
    expect(after).toMatchObject({ forwardedCount: 1, rejectedCount: 1, lastSeenAt: clock });
    expect(await aliases.findRoute('nobody@postern.test')).toBeNull();
    await expect(aliases.delete(other, alias.id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await aliases.delete(user, alias.id)).toBe(alias.address);
    const logs = await database.db
      .selectFrom('forwarding_log')
      .select('id')
      .where('alias_id', '=', alias.id)
      .execute();
    expect(logs).toEqual([]);
  });
});

describe('deleting a user', () => {
  it('removes its domains, aliases, forwarding log and audit log in one statement', async () => {
    const user = await createUser();
    const keep = await createUser();
    const alias = await aliases.create({
      userId: user,
      domainId: sharedDomainId,
      destinations: ['a@example.org'],
    });
    const kept = await aliases.create({
      userId: keep,
      domainId: sharedDomainId,
      destinations: ['a@example.org'],
    });
    await domains.add(user, `d${randomUUID().slice(0, 8)}.example.org`);
    await aliases.recordOutcome(alias.id, 'forwarded');
    await aliases.recordOutcome(kept.id, 'forwarded');
    const audit = new AuditLog(database.db, () => clock);
    await audit.append({
      userId: user,
      action: 'alias.create',
      requestId: 'r1',
      detail: { aliasId: alias.id },
    });
    await audit.append({ userId: keep, action: 'alias.create' });
    expect(await audit.forUser(user)).toEqual([
      { action: 'alias.create', requestId: 'r1', createdAt: clock },
    ]);

    await database.db.deleteFrom('users').where('id', '=', user).execute();

    const count = async (
      table: 'aliases' | 'forwarding_log' | 'audit_log' | 'domains',
      userId: string,
    ) =>
      (
        await database.db
          .selectFrom(table)
          .select('user_id')
          .where('user_id', '=', userId)
          .execute()
      ).length;
    for (const table of ['aliases', 'forwarding_log', 'audit_log', 'domains'] as const) {
      expect(await count(table, user)).toBe(0);
    }
    expect(await count('aliases', keep)).toBe(1);
    expect(await count('forwarding_log', keep)).toBe(1);
    expect(await count('audit_log', keep)).toBe(1);
  });
});

describe('domains', () => {
  it('lists shared and own domains, shows DNS records, and verifies through an injected resolver', async () => {
    const user = await createUser();
    const other = await createUser();
    const name = `v${randomUUID().slice(0, 8)}.example.org`;
    const domain = await domains.add(user, `${name.toUpperCase()}.`);
    expect(domain).toMatchObject({ name, shared: false, verified: false });
    // An unverified claim does not lock others out of a name (it may be theirs); a second claim
    // by the same user does, and so does the shared domain's name.
    const otherClaim = await domains.add(other, name);
    expect(otherClaim).toMatchObject({ name, verified: false });
    await expect(domains.add(user, name)).rejects.toMatchObject({
      code: 'DOMAIN_TAKEN',
      status: 409,
    });
    await expect(domains.add(other, 'postern.test')).rejects.toMatchObject({
      code: 'DOMAIN_TAKEN',
    });
    await expect(domains.add(other, 'not a domain')).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      field: 'name',
    });
    expect((await domains.list(user)).map((entry) => entry.name)).toEqual(['postern.test', name]);
    expect((await domains.list(other)).map((entry) => entry.name)).toEqual(['postern.test', name]);
    // Nobody signs for a name nobody has proven.
    expect(await domains.signingKey(name)).toBeNull();

    const records = await domains.dnsRecords(user, domain.id);
    expect(records).toContainEqual({ type: 'MX', name, value: 'mx.postern.test', priority: 10 });
    expect(records).toContainEqual({
      type: 'TXT',
      name: `postern._domainkey.${name}`,
      value: 'v=DKIM1; k=rsa; p=PUBLICKEY',
    });
    expect(records.some((record) => record.name === `_dmarc.${name}`)).toBe(true);
    await expect(domains.dnsRecords(other, domain.id)).rejects.toMatchObject({ code: 'NOT_FOUND' });

    const zone = new Map<string, string[][]>();
    const resolver: DnsResolver = {
      resolveTxt: (host) =>
        zone.has(host) ? Promise.resolve(zone.get(host)!) : Promise.reject(new Error('ENOTFOUND')),
      resolveMx: (host) =>
        Promise.resolve(host === name ? [{ exchange: 'MX.postern.test.', priority: 10 }] : []),
    };
    expect(await domains.verify(user, domain.id, resolver)).toEqual({
      verified: false,
      checks: { ownership: false, mx: true, dkim: false },
    });
    for (const record of records)
      if (record.type === 'TXT')
        zone.set(record.name, [[record.value.slice(0, 10), record.value.slice(10)]]);
    expect(await domains.verify(user, domain.id, resolver)).toEqual({
      verified: true,
      checks: { ownership: true, mx: true, dkim: true },
    });
    expect((await domains.list(user)).find((entry) => entry.id === domain.id)?.verified).toBe(true);
    // Proven: the other claim is gone, and the name cannot be claimed again.
    expect((await domains.list(other)).map((entry) => entry.name)).toEqual(['postern.test']);
    await expect(domains.add(other, name)).rejects.toMatchObject({ code: 'DOMAIN_TAKEN' });
    expect(await domains.signingKey(name)).toEqual({
      selector: 'postern',
      privateKeyPem: 'PRIVATE',
    });
    expect(await domains.signingKey('unknown.example')).toBeNull();

    const alias = await aliases.create({
      userId: user,
      domainId: domain.id,
      localPart: 'hello',
      destinations: ['x@example.org'],
    });
    await expect(domains.delete(other, domain.id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await domains.delete(user, domain.id);
    expect(await aliases.findRoute(alias.address)).toBeNull();
  });

  it('ensureShared is idempotent', async () => {
    expect((await domains.ensureShared('POSTERN.test')).id).toBe(sharedDomainId);
  });
});
