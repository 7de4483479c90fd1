import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AliasRepository } from '../src/aliases.js';
import { DomainRepository } from '../src/domains.js';
import { Supervisor } from '../src/supervisor.js';
import { eventually, startCaptureServer } from './support/capture.js';
import { createTestDatabase } from './support/database.js';
import { dkimVerdicts } from './support/dkim.js';
import type { TestDatabase } from './support/database.js';
import { databaseUrlFor } from './support/server.js';
import { swaks } from './support/swaks.js';

const root = fileURLToPath(new URL('..', import.meta.url));
let database: TestDatabase;
let capture: Awaited<ReturnType<typeof startCaptureServer>>;
let supervisor: Supervisor;
let dataDir: string;
let smtpPort = 0;

beforeAll(async () => {
  database = await createTestDatabase('rs_dkim');
  capture = await startCaptureServer();
  dataDir = await mkdtemp(join(tmpdir(), 'postern-dkim-'));
  const domains = new DomainRepository(database.db, { mxHost: 'mx.alias.test' });
  const shared = await domains.ensureShared('alias.test');
  const userId = randomUUID();
  await database.db
    .insertInto('users')
    .values({
      id: userId,
      email: 'd@example.org',
      password_hash: 'x',
      email_verified: true,
      created_at: 1,
    })
    .execute();
  const custom = await domains.add(userId, 'custom.test');
  await database.db
    .updateTable('domains')
    .set({ verified_at: 2 })
    .where('id', '=', custom.id)
    .execute();
  const aliases = new AliasRepository(database.db);
  await aliases.create({
    userId,
    domainId: shared.id,
    localPart: 'shared',
    destinations: ['one@dest.test'],
  });
  await aliases.create({
    userId,
    domainId: custom.id,
    localPart: 'shop',
    destinations: ['two@dest.test'],
  });
  supervisor = new Supervisor({
    cwd: root,
    execArgv: ['--import', 'tsx', '--import', join(root, 'runtime', 'register.mjs')],
    output: () => undefined,
    log: () => undefined,
  });
  // No REDIS_URL: in-memory fallbacks, and the SMTP process relays synchronously.
  smtpPort = await supervisor.start({
    name: 'smtp',
    module: join(root, 'src', 'smtp-main.ts'),
    env: {
      PATH: process.env['PATH'],
      NODE_ENV: 'test',
      DATABASE_URL: databaseUrlFor(database.schema),
      DATA_DIR: dataDir,
      SMTP_PORT: '0',
      SMTP_DOMAIN: 'alias.test',
      SMTP_RELAYS: `smtp://127.0.0.1:${capture.port}`,
      SMTP_FROM_REWRITE: 'always',
      SRS_SECRET: randomBytes(32).toString('base64url'),
    },
  });
}, 60_000);

afterAll(async () => {
  await supervisor.stop();
  await capture.close();
  await database.drop();
  await rm(dataDir, { recursive: true, force: true });
});

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
