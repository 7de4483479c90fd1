import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { AliasRepository } from '../../src/aliases.js';
import { DomainRepository } from '../../src/domains.js';
import { Supervisor } from '../../src/supervisor.js';
import type { SupervisorOptions } from '../../src/supervisor.js';
import { startCaptureServer } from './capture.js';
import { createTestDatabase } from './database.js';
import type { TestDatabase } from './database.js';
import { REDIS_URL, deleteKeys } from './redis.js';
import { databaseUrlFor } from './server.js';

export const root = fileURLToPath(new URL('../..', import.meta.url));

/** The three entry points the launcher runs. */
export type ProcessKind = 'api' | 'smtp' | 'worker';

/** A real PostgreSQL schema, Redis prefix, capture MX, data folder and supervisor for one test file. */
export interface ProcessHarness {
  database: TestDatabase;
  capture: Awaited<ReturnType<typeof startCaptureServer>>;
  supervisor: Supervisor;
  redis: Redis;
  prefix: string;
  dataDir: string;
  /** The environment every child gets (PostgreSQL, Redis, relay to the capture MX, secrets). */
  env: NodeJS.ProcessEnv;
  /** Starts src/<kind>-main.ts as `name` with the shared env plus `extra`; resolves with its port. */
  start(kind: ProcessKind, extra?: NodeJS.ProcessEnv, name?: string): Promise<number>;
  close(): Promise<void>;
}

export async function startProcessHarness(
  name: string,
  options: {
    capture?: Parameters<typeof startCaptureServer>[0];
    env?: NodeJS.ProcessEnv;
    supervisor?: Partial<Pick<SupervisorOptions, 'output' | 'log' | 'restartDelayMs'>>;
  } = {},
): Promise<ProcessHarness> {
  const database = await createTestDatabase(`rs_${name}`);
  const capture = await startCaptureServer(options.capture);
  const dataDir = await mkdtemp(join(tmpdir(), `postern-${name}-`));
  const prefix = `test:rs:${name}:${randomBytes(4).toString('hex')}:`;
  const redis = new Redis(REDIS_URL);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'],
    NODE_ENV: 'test',
    DATABASE_URL: databaseUrlFor(database.schema),
    REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    DATA_DIR: dataDir,
    SMTP_PORT: '0',
    SMTP_DOMAIN: 'alias.test',
    SMTP_RELAYS: `smtp://127.0.0.1:${capture.port}`,
    SMTP_FROM_REWRITE: 'never',
    SRS_SECRET: randomBytes(32).toString('base64url'),
    ...options.env,
  };
  const supervisor = new Supervisor({
    cwd: root,
    execArgv: ['--import', 'tsx', '--import', join(root, 'runtime', 'register.mjs')],
    output: () => undefined,
    log: () => undefined,
    ...options.supervisor,
  });
  return {
    database,
    capture,
    supervisor,
    redis,
    prefix,
    dataDir,
    env,
    start: (kind, extra = {}, childName = kind) =>
      supervisor.start({
        name: childName,
        module: join(root, 'src', `${kind}-main.ts`),
        env: { ...env, ...extra },
      }),
    async close() {
      await supervisor.stop();
      await capture.close();
      await deleteKeys(redis, prefix);
      await redis.quit();
      await database.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Inserts a verified user and one alias on the shared domain alias.test. */
export async function seedAlias(
  database: TestDatabase,
  alias: { email: string; localPart: string; destinations: string[] },
): Promise<{ userId: string; aliasId: string; domainId: string }> {
  const shared = await new DomainRepository(database.db, {
    mxHost: 'mx.alias.test',
  }).ensureShared('alias.test');
  const userId = randomUUID();
  await database.db
    .insertInto('users')
    .values({
      id: userId,
      email: alias.email,
      password_hash: 'x',
      email_verified: true,
      created_at: 1,
    })
    .execute();
  const created = await new AliasRepository(database.db).create({
    userId,
    domainId: shared.id,
    localPart: alias.localPart,
    destinations: alias.destinations,
  });
  return { userId, aliasId: created.id, domainId: shared.id };
}

/** A JSON request against a running API; an empty body reads as {}. */
export async function callJson(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  token?: string,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
  const response = await fetch(`${base}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return {
    status: response.status,
    json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>),
  };
}
