import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AliasRepository } from '../src/aliases.js';
import { DomainRepository } from '../src/domains.js';
import { Supervisor } from '../src/supervisor.js';
import { startCaptureServer } from './support/capture.js';
import { createTestDatabase } from './support/database.js';
import type { TestDatabase } from './support/database.js';
import { REDIS_URL, deleteKeys } from './support/redis.js';
import { databaseUrlFor } from './support/server.js';
import { swaks } from './support/swaks.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const prefix = `test:rs:smtplimit:${randomBytes(4).toString('hex')}:`;
const redis = new Redis(REDIS_URL);
let database: TestDatabase;
let capture: Awaited<ReturnType<typeof startCaptureServer>>;
let supervisor: Supervisor;
let dataDir: string;
const ports: number[] = [];

beforeAll(async () => {
  database = await createTestDatabase('rs_smtplimit');
  capture = await startCaptureServer();
  dataDir = await mkdtemp(join(tmpdir(), 'postern-smtplimit-'));
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
    LIMITS_SMTP_PER_MINUTE: '3',
  };
  const shared = await new DomainRepository(database.db, { mxHost: 'mx.alias.test' }).ensureShared(
    'alias.test',
  );
  const userId = randomUUID();
  await database.db
    .insertInto('users')
    .values({
      id: userId,
      email: 'l@example.org',
      password_hash: 'x',
      email_verified: true,
      created_at: 1,
    })
    .execute();
  await new AliasRepository(database.db).create({
    userId,
    domainId: shared.id,
    localPart: 'limited',
    destinations: ['far@dest.test'],
  });
  supervisor = new Supervisor({
    cwd: root,
    execArgv: ['--import', 'tsx', '--import', join(root, 'runtime', 'register.mjs')],
    output: () => undefined,
    log: () => undefined,
  });
  for (const name of ['smtp-1', 'smtp-2'])
    ports.push(
      await supervisor.start({ name, module: join(root, 'src', 'smtp-main.ts'), env: { ...env } }),
    );
}, 60_000);

afterAll(async () => {
  await supervisor.stop();
  await capture.close();
  await deleteKeys(redis, prefix);
  await redis.quit();
  await database.drop();
  await rm(dataDir, { recursive: true, force: true });
});

describe('SMTP limits on Redis across two SMTP processes', () => {
  it('one client IP gets one budget, whichever process it reaches', async () => {
    const outcomes: number[] = [];
    const transcripts: string[] = [];
    for (let index = 0; index < 4; index += 1) {
      const result = await swaks(
        ports[index % 2]!,
        `sender${index}@origin.test`,
        'limited@alias.test',
      );
      outcomes.push(result.code ?? -1);
      transcripts.push(result.output);
    }
    expect(outcomes.slice(0, 3)).toEqual([0, 0, 0]);
    expect(outcomes[3]).not.toBe(0);
    expect(transcripts[3]).toMatch(/<\*\* (421|450)/);
    expect(capture.messages).toHaveLength(3);
  }, 40_000);
});
