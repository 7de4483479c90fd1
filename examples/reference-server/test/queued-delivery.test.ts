import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AliasRepository } from '../src/aliases.js';
import { DomainRepository } from '../src/domains.js';
import { Supervisor } from '../src/supervisor.js';
import { eventually, startCaptureServer } from './support/capture.js';
import { createTestDatabase } from './support/database.js';
import type { TestDatabase } from './support/database.js';
import { REDIS_URL, deleteKeys } from './support/redis.js';
import { databaseUrlFor } from './support/server.js';
import { swaks } from './support/swaks.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const prefix = `test:rs:queued:${randomBytes(4).toString('hex')}:`;
const redis = new Redis(REDIS_URL);
let database: TestDatabase;
let capture: Awaited<ReturnType<typeof startCaptureServer>>;
let supervisor: Supervisor;
let dataDir: string;
let smtpPort = 0;
const env: NodeJS.ProcessEnv = {};

beforeAll(async () => {
  database = await createTestDatabase('rs_queued');
  capture = await startCaptureServer();
  dataDir = await mkdtemp(join(tmpdir(), 'postern-queued-'));
  Object.assign(env, {
    PATH: process.env['PATH'],
    NODE_ENV: 'test',
    DATABASE_URL: databaseUrlFor(database.schema),
    REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    DATA_DIR: dataDir,
    SMTP_PORT: '0',
    SMTP_DOMAIN: 'alias.test',
    SMTP_RELAYS: `smtp://127.0.0.1:${capture.port}`,
    SMTP_DELIVERY: 'queued',
    SMTP_FROM_REWRITE: 'never',
    SRS_SECRET: randomBytes(32).toString('base64url'),
  });
  const domains = new DomainRepository(database.db, { mxHost: 'mx.alias.test' });
  const shared = await domains.ensureShared('alias.test');
  const userId = randomUUID();
  await database.db
    .insertInto('users')
    .values({
      id: userId,
      email: 'q@example.org',
      password_hash: 'x',
      email_verified: true,
      created_at: 1,
    })
    .execute();
  await new AliasRepository(database.db).create({
    userId,
    domainId: shared.id,
    localPart: 'queued',
    destinations: ['far@dest.test'],
  });
  supervisor = new Supervisor({
    cwd: root,
    execArgv: ['--import', 'tsx', '--import', join(root, 'runtime', 'register.mjs')],
    output: () => undefined,
    log: () => undefined,
  });
  smtpPort = await supervisor.start({
    name: 'smtp',
    module: join(root, 'src', 'smtp-main.ts'),
    env: { ...env },
  });
}, 60_000);

afterAll(async () => {
  await supervisor.stop();
  await capture.close();
  await deleteKeys(redis, prefix);
  await redis.quit();
  await database.drop();
  await rm(dataDir, { recursive: true, force: true });
});

describe('queued delivery: smtp spools and enqueues, the worker relays', () => {
  it('answers 250 with no worker running, keeps the message spooled, and delivers it once a worker starts', async () => {
    const sent = await swaks(smtpPort, 'sender@origin.test', 'queued@alias.test');
    expect(sent.code).toBe(0);
    expect(capture.messages).toHaveLength(0);
    expect(
      (await readdir(join(dataDir, 'spool'))).filter((name) => name.endsWith('.eml')),
    ).toHaveLength(1);

    await supervisor.start({
      name: 'worker',
      module: join(root, 'src', 'worker-main.ts'),
      env: { ...env, SMTP_PORT: String(smtpPort) },
    });
    const delivered = await eventually(
      () => capture.messages.find((message) => message.to.includes('far@dest.test')),
      20_000,
    );
    expect(delivered.from).toMatch(/^SRS0=.+@alias\.test$/i);
    expect(delivered.data.toString('utf8')).toContain('DKIM-Signature');
    // The worker removes the spool file once the relay took the message.
    await eventually(async () =>
      (await readdir(join(dataDir, 'spool'))).some((name) => name.endsWith('.eml'))
        ? undefined
        : true,
    );
  }, 40_000);
});
