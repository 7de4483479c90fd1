import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SyncQueue } from '../src/index.js';
import { RedisBackend } from '../src/redis.js';
import { ownedRedis } from './fixtures/servers.js';
import type { OwnedRedis } from './fixtures/servers.js';

let server: OwnedRedis;

beforeAll(async () => {
  // Our own server with fsync on every write, never the shared one: we kill and restart it.
  server = await ownedRedis(['--appendonly', 'yes', '--appendfsync', 'always']);
  await server.start();
});

afterAll(async () => {
  await server.destroy();
});

describe('a Redis restart mid-run', () => {
  it('loses no acknowledged job, and the worker reconnects and resumes claiming', async () => {
    const redis = new Redis({ port: server.port, host: '127.0.0.1', retryStrategy: () => 50 });
    redis.on('error', () => undefined);
    const queue = new SyncQueue<{ n: number }>({
      name: 'restart',
      backend: new RedisBackend({ redis, checkEvictionPolicy: false }),
      leaseMs: 2_000,
    });
    const errors: string[] = [];
    queue.onError(({ error }) => errors.push(error.message));
    // At-least-once: every acknowledged job's handler runs (a completion whose reply was lost in
    // the crash may be reported as a lost lease, so count runs, not completion events).
    const ran = new Set<string>();
    const worker = queue.process(
      (job) => {
        ran.add(job.id);
        return new Promise((resolve) => setTimeout(resolve, 2));
      },
      {
        concurrency: 4,
        pollIntervalMs: 10,
      },
    );

    const acknowledged: string[] = [];
    const addSome = async (from: number, count: number): Promise<void> => {
      for (let n = from; n < from + count; n += 1) {
        try {
          acknowledged.push((await queue.add({ n })).id);
        } catch {
          // Not acknowledged, so not promised: the caller saw the failure.
        }
      }
    };
    await addSome(0, 200);
    await server.kill();
    const claimBeforeRestart = worker.lastClaimAt ?? 0;
    await server.start();
    await addSome(200, 200);

    for (;;) {
      const stats = await queue.stats();
      if (
        stats.waiting + stats.delayed + stats.active === 0 &&
        acknowledged.every((id) => ran.has(id))
      )
        break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await worker.close();
    expect(acknowledged.length).toBeGreaterThanOrEqual(400 - 10);
    for (const id of acknowledged) expect(ran.has(id)).toBe(true);
    expect(worker.lastClaimAt ?? 0).toBeGreaterThan(claimBeforeRestart);
    expect(await queue.stats()).toEqual({
      waiting: 0,
      delayed: 0,
      active: 0,
      dead: 0,
      completed: 0,
    });
    await redis.quit();
  }, 60_000);
});

describe('eviction policy check', () => {
  it('warns when maxmemory-policy is not noeviction, and stays quiet when it is', async () => {
    const redis = new Redis({ port: server.port, host: '127.0.0.1' });
    const warnings: string[] = [];
    const logger = {
      debug: () => undefined,
      info: () => undefined,
      warn: (_object: object | string, message?: string) => void warnings.push(message ?? ''),
      error: () => undefined,
    };
    await redis.config('SET', 'maxmemory-policy', 'allkeys-lru');
    expect(await new RedisBackend({ redis, logger }).checkEvictionPolicy()).toBe('allkeys-lru');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/noeviction/);

    const processWarnings: string[] = [];
    const onWarning = (warning: Error): void => void processWarnings.push(warning.message);
    process.on('warning', onWarning);
    const backend = new RedisBackend({ redis, prefix: 'evict:' });
    await backend.stats('q');
    for (let tries = 0; processWarnings.length === 0 && tries < 100; tries += 1) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    process.off('warning', onWarning);
    expect(processWarnings.some((message) => message.includes('allkeys-lru'))).toBe(true);

    await redis.config('SET', 'maxmemory-policy', 'noeviction');
    expect(await new RedisBackend({ redis, logger }).checkEvictionPolicy()).toBe('noeviction');
    expect(warnings).toHaveLength(1);
    await redis.quit();
  });
});
