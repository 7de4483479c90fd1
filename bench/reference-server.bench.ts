/**
 * The reference server's RCPT path: resolving an alias through the SMTP process's cache
 * (`createAliasResolver`, 30 s TTL, invalidated over Redis pub/sub) against what the audited
 * services did, one PostgreSQL query per recipient (`AliasRepository.findRoute`). 1,000 aliases
 * in a schema of their own on the local PostgreSQL (DATABASE_URL), cycled in order, 16 lookups in
 * flight. The reference server is a private example without a build, so it is imported from its
 * source (tsx runs it); only kysely and pg are needed at run time.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createAliasResolver } from '../examples/reference-server/src/alias-resolver.ts';
import { AliasRepository } from '../examples/reference-server/src/aliases.ts';
import { createDatabase } from '../examples/reference-server/src/db/connect.ts';
import { migrateToLatest } from '../examples/reference-server/src/db/migrations.ts';
import { DomainRepository } from '../examples/reference-server/src/domains.ts';
import type { BenchResult } from './harness.ts';
import { progress, ratio, report, suite } from './harness.ts';

const DATABASE_URL = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const ALIASES = 1_000;
const CONCURRENCY = 16;
const schema = `bench_rs_${randomBytes(4).toString('hex')}`;

// pg comes through the reference server's own connect module: the bench workspace does not depend on it.
const admin = createDatabase({ url: DATABASE_URL, maxConnections: 1 });
await admin.pool.query(`CREATE SCHEMA ${schema}`);
const url = new URL(DATABASE_URL);
url.searchParams.set('options', `-c search_path=${schema}`);
const database = createDatabase({ url: url.toString(), maxConnections: CONCURRENCY });
const results: BenchResult[] = [];
try {
  await migrateToLatest(database.db);
  const domains = new DomainRepository(database.db, {
    mxHost: 'mx.bench.test',
    generateDkimKey: () => Promise.resolve({ privateKeyPem: 'k', publicKeyBase64: 'p' }),
  });
  const shared = await domains.ensureShared('bench.test');
  const userId = randomUUID();
  await database.db
    .insertInto('users')
    .values({
      id: userId,
      email: 'bench@bench.test',
      password_hash: 'x',
      email_verified: true,
      created_at: Date.now(),
    })
    .execute();
  const aliases = new AliasRepository(database.db);
  progress(`creating ${ALIASES} aliases`);
  const addresses: string[] = [];
  for (let index = 0; index < ALIASES; index += 1) {
    addresses.push(
      (
        await aliases.create({
          userId,
          domainId: shared.id,
          localPart: `a${index}`,
          destinations: ['me@dest.test'],
        })
      ).address,
    );
  }
  const cycle = (lookup: (address: string) => Promise<unknown>): (() => Promise<unknown>) => {
    let next = 0;
    return () => {
      const address = addresses[next]!;
      next = next === ALIASES - 1 ? 0 : next + 1;
      return lookup(address);
    };
  };
  const cached = createAliasResolver({
    findRoute: (address) => aliases.findRoute(address),
    ttlMs: 30_000,
  });
  const context = { sender: 's@origin.test', remoteAddress: '127.0.0.1', sessionId: 'bench' };
  const meta = {
    aliases: ALIASES,
    postgres: (await admin.pool.query<{ server_version: string }>('SHOW server_version')).rows[0]
      ?.server_version,
  };
  results.push(
    ...(await suite(
      [
        {
          name: 'cached resolver (30 s TTL, pub/sub invalidation)',
          fn: cycle((address) => cached.resolve(address, context)),
          meta,
        },
        {
          name: 'PostgreSQL query per RCPT (no cache)',
          fn: cycle((address) => aliases.findRoute(address)),
          meta,
        },
      ],
      { durationMs: 6_000, warmupMs: 1_000, rounds: 5, concurrency: CONCURRENCY },
    )),
  );
} finally {
  await database.destroy();
  await admin.pool.query(`DROP SCHEMA ${schema} CASCADE`);
  await admin.destroy();
}

const byName = (name: string): BenchResult => results.find((result) => result.name === name)!;
report(`Alias resolution on the RCPT path: ${ALIASES} aliases, ${CONCURRENCY} in flight`, results, {
  'cached/uncached': ratio(
    byName('cached resolver (30 s TTL, pub/sub invalidation)'),
    byName('PostgreSQL query per RCPT (no cache)'),
  ),
});
