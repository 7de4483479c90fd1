import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, it } from 'vitest';
import { RedisBackend } from '../src/redis.js';
import { backendContract } from '../src/testing.js';
import { deleteKeys } from './fixtures/servers.js';

const redis = new Redis(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379');
const prefix = `postern-test:sq-contract:${randomUUID()}:`;

afterAll(async () => {
  await deleteKeys(redis, prefix);
  await redis.quit();
});

backendContract({
  name: 'RedisBackend',
  create: (clock) => new RedisBackend({ redis, prefix, clock, checkEvictionPolicy: false }),
  runner: { describe, it },
});
