import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, it } from 'vitest';
import { RedisAuthStore } from '../src/redis.js';
import { checkRotationModel } from './rotation-model.js';

const redis = new Redis(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379');
const prefix = `test:auth-model:${randomUUID()}:`;

afterAll(async () => {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
  await redis.quit();
});

describe('refresh rotation against a model (Redis store)', () => {
  it('matches the model for any sequence of refreshes with any earlier token and any waits (grace on Redis time)', async () => {
    // Each run registers the same address, so each gets its own prefix.
    await checkRotationModel(
      () => new RedisAuthStore({ redis, prefix: `${prefix}${randomUUID()}:` }),
      30,
      'store',
    );
  });
});
