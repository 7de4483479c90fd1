import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '@postern/logger';
import { Redis } from 'ioredis';
import type { DependencyContainer } from 'tsyringe';
import { loadServerConfig } from '../../src/config.js';
import type { ServerConfig } from '../../src/config.js';
import { createContainer, disposeContainer } from '../../src/container.js';
import type { Overrides, ProcessName } from '../../src/container.js';
import { createTestDatabase } from './database.js';
import type { TestDatabase } from './database.js';
import { DATABASE_URL } from './database.js';
import { REDIS_URL, deleteKeys } from './redis.js';

/** Everything one test file's server uses, and how to tear it down. */
export interface TestEnvironment {
  env: Record<string, string>;
  config: ServerConfig;
  database: TestDatabase;
  redis: Redis;
  prefix: string;
  dataDir: string;
  /** Every log line written by containers made with `container()`. */
  logLines: string[];
  container(processName: ProcessName, overrides?: Overrides): DependencyContainer;
  close(): Promise<void>;
}

export function databaseUrlFor(schema: string): string {
  const url = new URL(DATABASE_URL);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return url.toString();
}

export async function createTestEnvironment(
  name: string,
  extraEnv: Record<string, string> = {},
): Promise<TestEnvironment> {
  const database = await createTestDatabase(`rs_${name}`);
  const prefix = `test:rs:${name}:${randomBytes(4).toString('hex')}:`;
  const dataDir = await mkdtemp(join(tmpdir(), `postern-${name}-`));
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    DATABASE_URL: databaseUrlFor(database.schema),
    REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    DATA_DIR: dataDir,
    LOG_LEVEL: 'info',
    SMTP_DOMAIN: 'alias.test',
    SMTP_MX_HOST: 'mx.alias.test',
    API_OPENAPI: 'true',
    ...extraEnv,
  };
  const config = loadServerConfig(env);
  const redis = new Redis(REDIS_URL);
  const logLines: string[] = [];
  const containers: DependencyContainer[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logLines.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((line) => line !== ''),
      );
      callback();
    },
  });
  return {
    env,
    config,
    database,
    redis,
    prefix,
    dataDir,
    logLines,
    container(processName, overrides = {}) {
      const logger = createLogger({
        name: `postern-${processName}`,
        level: 'debug',
        destination,
        pretty: false,
      });
      const made = createContainer(config, processName, { logger, ...overrides });
      containers.push(made);
      return made;
    },
    async close() {
      for (const made of containers.reverse()) await disposeContainer(made);
      await deleteKeys(redis, prefix);
      await redis.quit();
      await database.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
