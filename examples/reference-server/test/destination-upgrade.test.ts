// Upgrading a database whose aliases predate destination verification (migration 0003): what they
// forward to is kept, visible as grandfathered, and nothing new may use it until it is verified.
import { randomBytes, randomUUID } from 'node:crypto';
import { Migrator } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toRecipient } from '../src/alias-resolver.js';
import { AliasRepository } from '../src/aliases.js';
import { createDatabase } from '../src/db/connect.js';
import type { DatabaseHandle } from '../src/db/connect.js';
import { migrateToLatest, migrations } from '../src/db/migrations.js';
import { DestinationRepository } from '../src/destinations.js';
import { DATABASE_URL } from './support/database.js';

const schema = `rs_upgrade_${randomBytes(5).toString('hex')}`;
let handle: DatabaseHandle;

async function admin(query: string): Promise<void> {
  const client = new pg.Client({ connectionString: DATABASE_URL });
  await client.connect();
  await client.query(query);
  await client.end();
}

beforeAll(async () => {
  await admin(`CREATE SCHEMA ${schema}`);
  handle = createDatabase({ url: DATABASE_URL, schema });
});

afterAll(async () => {
  await handle.destroy();
  await admin(`DROP SCHEMA ${schema} CASCADE`);
});

describe('upgrading aliases made before destinations were verified', () => {
  it('grandfathers what they forward to, keeps forwarding, and asks verification for anything new', async () => {
    const { db } = handle;
    const migrator = new Migrator({
      db,
      provider: { getMigrations: () => Promise.resolve(migrations) },
      migrationTableSchema: schema,
    });
    expect((await migrator.migrateTo('0002_domain_claims')).error).toBeUndefined();

    // Rows as the server wrote them before 0003: destinations are plain addresses on the alias.
    const userId = randomUUID();
    const domainId = randomUUID();
    const now = Date.now();
    await db
      .insertInto('users')
      .values({
        id: userId,
        email: 'old@example.org',
        password_hash: 'x',
        email_verified: true,
        created_at: now,
      })
      .execute();
    await db
      .insertInto('domains')
      .values({
        id: domainId,
        user_id: null,
        name: 'alias.test',
        verification_token: 'x',
        dkim_selector: 'x',
        dkim_private_key: 'x',
        dkim_public_key: 'x',
        verified_at: now,
        created_at: now,
      })
      .execute();
    const oldAlias = (localPart: string, destinations: string[]) => ({
      id: randomUUID(),
      user_id: userId,
      domain_id: domainId,
      local_part: localPart,
      address: `${localPart}@alias.test`,
      enabled: true,
      destinations,
      last_seen_at: null,
      created_at: now,
    });
    await db
      .insertInto('aliases')
      .values([
        oldAlias('shop', ['old@example.org', 'partner@old.example']),
        oldAlias('news', ['partner@old.example', 'other@old.example']),
        oldAlias('self', ['old@example.org']),
      ])
      .execute();

    await migrateToLatest(db);

    const destinations = new DestinationRepository(db);
    const aliases = new AliasRepository(db, { destinations });
    // One row per (user, address), the account's own address excepted; unverified, grandfathered.
    const listed = await destinations.list(userId);
    expect(listed.map((destination) => destination.address).sort()).toEqual([
      'other@old.example',
      'partner@old.example',
    ]);
    for (const destination of listed)
      expect(destination).toMatchObject({ verified: false, verifiedAt: null, grandfathered: true });

    // Mail keeps flowing to every address the aliases had.
    expect(toRecipient(await aliases.findRoute('shop@alias.test'))).toEqual({
      destinations: ['old@example.org', 'partner@old.example'],
    });
    expect(toRecipient(await aliases.findRoute('news@alias.test'))).toEqual({
      destinations: ['partner@old.example', 'other@old.example'],
    });

    // A grandfathered address is not usable for new aliases or changes until it is verified.
    await expect(
      aliases.create({
        userId,
        domainId,
        localPart: 'fresh',
        destinations: ['partner@old.example'],
      }),
    ).rejects.toMatchObject({ code: 'VALIDATION_FAILED', field: 'destinations' });
    // Nor can it be deleted from under the aliases that forward to it.
    const partner = listed.find((destination) => destination.address === 'partner@old.example')!;
    await expect(destinations.delete(userId, partner.id)).rejects.toMatchObject({
      code: 'CONFLICT',
    });

    // Adding it (as `POST /destinations` does) mails a token; spending it verifies the address.
    const added = await destinations.add(userId, 'partner@old.example');
    expect(added).toMatchObject({ created: false, destination: { id: partner.id } });
    const confirmed = await destinations.confirm(added.token!);
    expect(confirmed).toMatchObject({
      userId,
      destination: { verified: true, grandfathered: false },
    });
    expect(
      (
        await aliases.create({
          userId,
          domainId,
          localPart: 'fresh',
          destinations: ['partner@old.example'],
        })
      ).destinations,
    ).toEqual(['partner@old.example']);

    // An operator who ends the grace period clears grandfathered_at: mail to what is still
    // unverified stops at once, and an alias left with nothing verified is refused at RCPT.
    await db.updateTable('destinations').set({ grandfathered_at: null }).execute();
    expect(toRecipient(await aliases.findRoute('news@alias.test'))).toEqual({
      destinations: ['partner@old.example'],
    });
    await db
      .insertInto('aliases')
      .values(oldAlias('lonely', ['other@old.example']))
      .execute();
    expect(toRecipient(await aliases.findRoute('lonely@alias.test'))).toMatchObject({
      disabled: 'reject',
    });
    // The account's own address needs no row and always resolves.
    expect(toRecipient(await aliases.findRoute('self@alias.test'))).toEqual({
      destinations: ['old@example.org'],
    });
  });
});
