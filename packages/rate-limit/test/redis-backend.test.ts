import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRateLimiter, combine } from '../src/index.js';
import { RedisBackend, redisKey } from '../src/redis.js';
import type {
  IoredisScriptClient,
  NodeRedisScriptClient,
  RedisScriptClient,
} from '../src/redis.js';
import { ManualClock, backendContract } from '../src/testing.js';
import { REDIS_URL } from './helpers.js';

const run = randomUUID().slice(0, 8);
const clients = Array.from({ length: 4 }, () => new Redis(REDIS_URL));
const nodeRedis = createClient({ url: REDIS_URL });

beforeAll(async () => {
  await nodeRedis.connect();
});

afterAll(async () => {
  await Promise.all(clients.map((client) => client.quit()));
  nodeRedis.destroy();
});

const exists = async (prefix: string, key: string): Promise<boolean> =>
  (await clients[0]!.exists(redisKey(prefix, key))) === 1;

backendContract({
  name: 'RedisBackend on 4 ioredis clients',
  describe,
  it,
  createFixture: () => ({
    backends: clients.map((redis) => new RedisBackend({ redis, onError: 'throw' })),
    periodMs: 1_000,
    advance: (ms) => sleep(ms),
    stored: exists,
  }),
});

backendContract({
  name: 'RedisBackend on node-redis',
  describe,
  it,
  createFixture: () => ({
    backends: [new RedisBackend({ redis: nodeRedis, onError: 'throw' })],
    periodMs: 1_000,
    advance: (ms) => sleep(ms),
    stored: exists,
  }),
});

describe('RedisBackend on a single Redis', () => {
  it('accepts ioredis and node-redis clients by type', () => {
    const fromIoredis: RedisScriptClient = clients[0]!;
    const fromNodeRedis: RedisScriptClient = nodeRedis;
    expect(fromIoredis).toBeDefined();
    expect(fromNodeRedis).toBeDefined();
  });

  it('shares one limit between ioredis and node-redis processes', async () => {
    const prefix = `share-${run}`;
    const viaIoredis = createRateLimiter({
      limit: 3,
      periodMs: 60_000,
      prefix,
      backend: new RedisBackend({ redis: clients[0]! }),
    });
    const viaNodeRedis = createRateLimiter({
      limit: 3,
      periodMs: 60_000,
      prefix,
      backend: new RedisBackend({ redis: nodeRedis }),
    });
    expect((await viaIoredis.consume('k')).remaining).toBe(2);
    expect((await viaNodeRedis.consume('k')).remaining).toBe(1);
    expect((await viaIoredis.consume('k')).remaining).toBe(0);
    expect((await viaNodeRedis.consume('k')).allowed).toBe(false);
    await viaIoredis.reset('k');
  });

  it('stores the TAT in Redis server time with a TTL equal to the backlog', async () => {
    const prefix = `ttl-${run}`;
    const limiter = createRateLimiter({
      limit: 10,
      periodMs: 10_000,
      prefix,
      backend: new RedisBackend({ redis: clients[1]! }),
    });
    await limiter.consume('k', { cost: 4 });
    const [seconds, micros] = await clients[1]!.time();
    const nowUs = Number(seconds) * 1e6 + Number(micros);
    const tat = Number(await clients[1]!.get(redisKey(prefix, 'k')));
    expect(tat - nowUs).toBeGreaterThan(3_000_000);
    expect(tat - nowUs).toBeLessThanOrEqual(4_000_000);
    const ttl = await clients[1]!.pttl(redisKey(prefix, 'k'));
    expect(ttl).toBeGreaterThan(3_000);
    expect(ttl).toBeLessThanOrEqual(4_000);
    await limiter.reset('k');
  });

  it('keeps one hash tag per subject and escapes braces and percent signs', () => {
    expect(redisKey('login', 'alice')).toBe('login:{alice}');
    expect(redisKey('login', 'a}b%c{')).toBe('login:{a%7Db%25c{}');
    expect(redisKey('p', '%7D')).not.toBe(redisKey('p', '}'));
  });

  it('reloads the script after SCRIPT FLUSH (NOSCRIPT) on both clients', async () => {
    // A private server, so flushing its script cache disturbs no one.
    const { startRedis } = await import('./helpers.js');
    const own = await startRedis();
    const io = new Redis({ port: own.port, host: '127.0.0.1' });
    const nr = createClient({ socket: { port: own.port, host: '127.0.0.1' } });
    await nr.connect();
    try {
      for (const redis of [io, nr] as RedisScriptClient[]) {
        const limiter = createRateLimiter({
          limit: 2,
          periodMs: 60_000,
          prefix: 'noscript',
          backend: new RedisBackend({ redis, onError: 'throw' }),
        });
        await io.script('FLUSH');
        expect((await limiter.consume('k')).remaining).toBe(1);
        await io.script('FLUSH');
        expect((await limiter.consume('k')).remaining).toBe(0);
        await limiter.reset('k');
      }
    } finally {
      io.disconnect();
      nr.destroy();
      await own.stop();
    }
  });

  it('combines limiters atomically on Redis under concurrency', async () => {
    const prefix = `combo-${run}`;
    const backends = clients.map((redis) => new RedisBackend({ redis, onError: 'throw' }));
    const combos = backends.map((backend) =>
      combine(
        createRateLimiter({ limit: 30, periodMs: 3_600_000, prefix: `${prefix}-a`, backend }),
        createRateLimiter({ limit: 10, periodMs: 3_600_000, prefix: `${prefix}-b`, backend }),
      ),
    );
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, index) => combos[index % 4]!.consume('k')),
    );
    expect(results.filter((result) => result.allowed)).toHaveLength(10);
    // The wider limit was charged exactly for the 10 allowed calls, never for denied ones.
    expect((await combos[0]!.limiters[0]!.peek('k')).remaining).toBe(20);
    await combos[0]!.reset('k');
  });

  it('answers a call on a key of another type by the policy, while the rest of its batch goes on', async () => {
    const prefix = `wrongtype-${run}`;
    await clients[0]!.hset(redisKey(prefix, 'bad'), 'field', 'value');
    const backend = new RedisBackend({ redis: clients[0]!, onError: 'throw' });
    const limiter = createRateLimiter({ limit: 5, periodMs: 60_000, prefix, backend });
    const [good, bad, again] = await Promise.allSettled([
      limiter.consume('good'),
      limiter.consume('bad'),
      limiter.consume('good'),
    ]);
    expect(good).toMatchObject({ status: 'fulfilled', value: { allowed: true, remaining: 4 } });
    expect(again).toMatchObject({ status: 'fulfilled', value: { allowed: true, remaining: 3 } });
    expect(bad).toMatchObject({
      status: 'rejected',
      reason: { code: 'BACKEND_ERROR', message: expect.stringContaining('another type') as string },
    });
    expect(backend.state).toBe('redis');
    expect(await clients[0]!.type(redisKey(prefix, 'bad'))).toBe('hash');
    await clients[0]!.del(redisKey(prefix, 'bad'));
    await limiter.reset('good');
  });

  it('answers a call on a key holding a non-number by the policy, alone or in a batch', async () => {
    const prefix = `nan-${run}`;
    await clients[0]!.set(redisKey(prefix, 'bad'), 'not-a-number');
    await clients[0]!.set(redisKey(prefix, 'nan'), 'nan');
    const backend = new RedisBackend({ redis: clients[0]!, onError: 'throw' });
    const limiter = createRateLimiter({ limit: 5, periodMs: 60_000, prefix, backend });
    const [good, bad, nan, again] = await Promise.allSettled([
      limiter.consume('good'),
      limiter.consume('bad'),
      limiter.consume('nan'),
      limiter.consume('good'),
    ]);
    expect(good).toMatchObject({ status: 'fulfilled', value: { allowed: true, remaining: 4 } });
    expect(again).toMatchObject({ status: 'fulfilled', value: { allowed: true, remaining: 3 } });
    for (const failed of [bad, nan]) {
      expect(failed).toMatchObject({ status: 'rejected', reason: { code: 'BACKEND_ERROR' } });
    }
    // Alone, on the script's one-key path.
    await expect(limiter.consume('bad')).rejects.toMatchObject({ code: 'BACKEND_ERROR' });
    await expect(limiter.peek('nan')).rejects.toMatchObject({ code: 'BACKEND_ERROR' });
    expect(backend.state).toBe('redis');
    expect(await clients[0]!.get(redisKey(prefix, 'bad'))).toBe('not-a-number');
    await limiter.reset('bad');
    await limiter.reset('nan');
    await limiter.reset('good');
  });

  it('reads integer replies given as strings (ioredis stringNumbers)', async () => {
    const prefix = `strings-${run}`;
    const client = new Redis(REDIS_URL, { stringNumbers: true });
    try {
      const backend = new RedisBackend({ redis: client, onError: 'throw' });
      const limiter = createRateLimiter({ limit: 5, periodMs: 60_000, prefix, backend });
      expect((await limiter.consume('k', { cost: 2 })).remaining).toBe(3);
      const [first, second] = await Promise.all([
        limiter.consume('k', { cost: 3 }),
        limiter.consume('k'),
      ]);
      expect(first).toMatchObject({ allowed: true, remaining: 0 });
      expect(second).toMatchObject({ allowed: false, remaining: 0 });
      await limiter.reset('k');
      expect((await limiter.peek('k')).remaining).toBe(5);
    } finally {
      await client.quit();
    }
  });

  it('answers a reply whose backlog is missing or malformed as unexpected, never with NaN', async () => {
    // A client standing in for a Redis (or a proxy) that answers the script wrongly: the shapes
    // here cannot be produced by the real script, which the tests above run.
    for (const reply of [[1], [1, 'abc'], [1, -5], [1, null], [0, 1.5]]) {
      const odd: NodeRedisScriptClient = {
        evalSha: () => Promise.resolve(reply),
        eval: () => Promise.resolve(reply),
      };
      const backend = new RedisBackend({ redis: odd, onError: 'throw' });
      const limiter = createRateLimiter({ limit: 5, periodMs: 60_000, backend });
      await expect(limiter.consume('k')).rejects.toMatchObject({ code: 'BACKEND_ERROR' });
    }
  });

  it('applies a reset in call order with the other calls of its tick', async () => {
    const backends = [
      new RedisBackend({ redis: clients[0]! }),
      new RedisBackend({ redis: nodeRedis }),
      new RedisBackend({ redis: clients[1]!, batch: false }),
    ];
    for (const [index, backend] of backends.entries()) {
      const limiter = createRateLimiter({
        limit: 5,
        periodMs: 60_000,
        prefix: `order-${index}-${run}`,
        backend,
      });
      await Promise.all([limiter.consume('bob'), limiter.reset('bob')]);
      expect((await limiter.peek('bob')).remaining).toBe(5);
      await Promise.all([limiter.consume('bob'), limiter.reset('bob'), limiter.consume('bob')]);
      expect((await limiter.peek('bob')).remaining).toBe(4);
      // Two resets of one key each in one run: four arguments, not the one-call path.
      const other = createRateLimiter({
        limit: 5,
        periodMs: 60_000,
        prefix: `order-${index}-b-${run}`,
        backend,
      });
      await Promise.all([other.consume('bob', { cost: 5 }), limiter.consume('bob')]);
      await Promise.all([limiter.reset('bob'), other.reset('bob')]);
      expect((await limiter.peek('bob')).remaining).toBe(5);
      expect((await other.peek('bob')).remaining).toBe(5);
    }
  });

  it('rejects keys that are not well-formed UTF-16, which Redis would merge', async () => {
    const limiter = createRateLimiter({
      limit: 1,
      periodMs: 60_000,
      prefix: `utf16-${run}`,
      backend: new RedisBackend({ redis: clients[0]!, onError: 'throw' }),
    });
    for (const key of ['\uD800', '\uDBFF', 'a\uDC00b']) {
      await expect(limiter.consume(key)).rejects.toMatchObject({
        code: 'INVALID_KEY',
        option: 'key',
      });
    }
    expect((await limiter.consume('\uFFFD')).allowed).toBe(true);
    expect((await limiter.consume('\u{1F600}')).allowed).toBe(true);
    await limiter.reset('\uFFFD');
    await limiter.reset('\u{1F600}');
  });

  it('stays exact when more calls arrive at once than one script run takes', async () => {
    const prefix = `bigbatch-${run}`;
    const limiter = createRateLimiter({
      limit: 300,
      periodMs: 3_600_000,
      prefix,
      backend: new RedisBackend({ redis: clients[2]! }),
    });
    const results = await Promise.all(Array.from({ length: 700 }, () => limiter.consume('k')));
    expect(results.filter((result) => result.allowed)).toHaveLength(300);
    await limiter.reset('k');
  });

  it('sends a tick of 16 or more calls as two script runs, answered in call order', async () => {
    const prefix = `split-${run}`;
    const client = clients[3]!;
    const runs: number[] = [];
    // The real client, counting the keys of each script run it is asked for.
    const counting: IoredisScriptClient = {
      evalsha: (sha, numKeys, ...rest) => {
        runs.push(numKeys);
        return client.evalsha(sha, numKeys, ...rest);
      },
      eval: (script, numKeys, ...rest) => client.eval(script, numKeys, ...rest),
    };
    const limiter = createRateLimiter({
      limit: 30,
      periodMs: 3_600_000,
      prefix,
      backend: new RedisBackend({ redis: counting }),
    });
    await Promise.all(Array.from({ length: 15 }, (_, index) => limiter.peek(`p${index}`)));
    expect(runs).toEqual([15]);
    runs.length = 0;
    const results = await Promise.all(Array.from({ length: 40 }, () => limiter.consume('k')));
    expect(runs).toEqual([20, 20]);
    // Exactly the first 30 in call order pass, across both runs.
    expect(results.map((result) => result.allowed)).toEqual(
      Array.from({ length: 40 }, (_, index) => index < 30),
    );
    runs.length = 0;
    await Promise.all(Array.from({ length: 600 }, (_, index) => limiter.peek(`p${index}`)));
    expect(runs).toEqual([256, 256, 88]);
    await limiter.reset('k');
  });

  it('sends each call alone with batch: false, with the same answers', async () => {
    const prefix = `nobatch-${run}`;
    const limiter = createRateLimiter({
      limit: 20,
      periodMs: 3_600_000,
      prefix,
      backend: new RedisBackend({ redis: nodeRedis, batch: false }),
    });
    const results = await Promise.all(Array.from({ length: 50 }, () => limiter.consume('k')));
    expect(results.filter((result) => result.allowed)).toHaveLength(20);
    await limiter.reset('k');
  });

  it('lets processes with skewed clocks agree, since only Redis time counts', async () => {
    const prefix = `skew-${run}`;
    const behind = new RedisBackend({ redis: clients[0]!, clock: new ManualClock(0) });
    const ahead = new RedisBackend({
      redis: clients[1]!,
      clock: new ManualClock(4_102_444_800_000),
    });
    const a = createRateLimiter({ limit: 4, periodMs: 60_000, prefix, backend: behind });
    const b = createRateLimiter({ limit: 4, periodMs: 60_000, prefix, backend: ahead });
    const results = [
      await a.consume('k'),
      await b.consume('k'),
      await a.consume('k'),
      await b.consume('k'),
      await b.consume('k'),
    ];
    expect(results.map((result) => result.remaining)).toEqual([3, 2, 1, 0, 0]);
    expect(results[4]!.allowed).toBe(false);
    expect(results[4]!.retryAfterMs).toBeGreaterThan(14_000);
    expect(results[4]!.retryAfterMs).toBeLessThanOrEqual(15_000);
    await a.reset('k');
  });
});
