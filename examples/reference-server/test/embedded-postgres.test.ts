import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AliasRepository } from '../src/aliases.js';
import { createDatabase } from '../src/db/connect.js';
import type { DatabaseHandle } from '../src/db/connect.js';
import { migrateToLatest } from '../src/db/migrations.js';
import { DomainRepository } from '../src/domains.js';
import { startEmbeddedPostgres } from '../src/embedded-postgres.js';
import type { EmbeddedPostgres } from '../src/embedded-postgres.js';

let directory: string;
let embedded: EmbeddedPostgres;
let handles: DatabaseHandle[] = [];

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'postern-pglite-'));
  embedded = await startEmbeddedPostgres(join(directory, 'pglite'));
}, 60_000);

afterAll(async () => {
  for (const handle of handles) await handle.destroy();
  await embedded.stop();
  await rm(directory, { recursive: true, force: true });
});

describe('the embedded database (PGlite over the wire protocol)', () => {
  it('runs the same migrations and queries as PostgreSQL, from two pools at once', async () => {
    const first = createDatabase({ url: embedded.url, maxConnections: 4 });
    const second = createDatabase({ url: embedded.url, maxConnections: 4 });
    handles = [first, second];
    await migrateToLatest(first.db);
    const domains = new DomainRepository(first.db, {
      mxHost: 'mx.test',
      generateDkimKey: () => Promise.resolve({ privateKeyPem: 'k', publicKeyBase64: 'p' }),
    });
    const shared = await domains.ensureShared('alias.test');
    const users = [randomUUID(), randomUUID()];
    for (const id of users)
      await first.db
        .insertInto('users')
        .values({
          id,
          email: `${id}@x.test`,
          password_hash: 'h',
          email_verified: true,
          created_at: 1,
        })
        .execute();
    const results = await Promise.allSettled(
      [first, second].map((handle, index) =>
        new AliasRepository(handle.db).create({
          userId: users[index]!,
          domainId: shared.id,
          localPart: 'same',
          destinations: ['a@x.test'],
        }),
      ),
    );
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
    // Counting runs a transaction on one connection; the other pool keeps working meanwhile.
    const alias = (
      results.find((result) => result.status === 'fulfilled') as PromiseFulfilledResult<{
        id: string;
        address: string;
      }>
    ).value;
    const repository = new AliasRepository(second.db);
    await Promise.all([
      repository.recordOutcome(alias.id, 'forwarded'),
      new AliasRepository(first.db).recordOutcome(alias.id, 'forwarded'),
      first.db.selectFrom('aliases').selectAll().execute(),
    ]);
    expect(await repository.findRoute(alias.address)).toMatchObject({ enabled: true });
    const row = await second.db
      .selectFrom('aliases')
      .select('forwarded_count')
      .where('id', '=', alias.id)
      .executeTakeFirstOrThrow();
    expect(Number(row.forwarded_count)).toBe(2);
  });
});
