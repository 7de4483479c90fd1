import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { SyncQueue } from '../src/index.js';
import { RedisBackend } from '../src/redis.js';
import { deleteKeys } from './fixtures/servers.js';

const redisUrl = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const redis = new Redis(redisUrl);
const prefix = `postern-test:sq-crash:${randomUUID()}:`;
const packageDir = fileURLToPath(new URL('..', import.meta.url));
let child: ChildProcess | null = null;

afterAll(async () => {
  child?.kill('SIGKILL');
  await deleteKeys(redis, prefix);
  await redis.quit();
});

describe('crash recovery with a real killed process', () => {
  it('reclaims the jobs of a SIGKILLed worker after the lease and completes every job', async () => {
    const name = 'crash';
    const queue = new SyncQueue<{ n: number }>({
      name,
      backend: new RedisBackend({ redis, prefix, checkEvictionPolicy: false }),
      leaseMs: 1_000,
    });
    const added = await queue.addBulk(
      Array.from({ length: 10 }, (_, n) => ({ payload: { n }, key: `k${n}` })),
    );
    const addedIds = added.map((result) => result.id);
    expect(new Set(addedIds).size).toBe(10);

    // A separate Node process claims three jobs and hangs in their handlers.
    const worker = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--import',
        './test/fixtures/register-lua.mjs',
        'test/fixtures/crash-worker.ts',
        redisUrl,
        prefix,
        name,
      ],
      { cwd: packageDir, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    child = worker;
    const startedInChild: string[] = [];
    const lines = createInterface({ input: worker.stdout as NodeJS.ReadableStream });
    await new Promise<void>((resolve, reject) => {
      worker.once('exit', (code) => reject(new Error(`child exited early with ${String(code)}`)));
      lines.on('line', (line) => {
        const [word, id] = line.split(' ');
        if (word === 'started' && id !== undefined) startedInChild.push(id);
        if (startedInChild.length === 3) resolve();
      });
    });
    expect(await queue.stats()).toMatchObject({ active: 3 });

    worker.removeAllListeners('exit');
    const exited = new Promise((resolve) =>
      worker.once('exit', (_code, signal) => resolve(signal)),
    );
    worker.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    child = null;

    // The jobs stay leased to the dead process until the lease expires; then any worker reclaims them.
    expect(await queue.stats()).toMatchObject({ active: 3 });
    const stalled = new Set<string>();
    queue.onStalled(({ id }) => stalled.add(id));
    const completed = new Map<string, number>();
    const done = new Promise<void>((resolve) => {
      queue.onCompleted(({ job }) => {
        completed.set(job.id, job.attempt);
        if (completed.size === addedIds.length) resolve();
      });
    });
    const survivor = queue.process(() => undefined, { concurrency: 4, pollIntervalMs: 20 });
    await done;
    await survivor.close();

    expect([...completed.keys()].sort()).toEqual([...addedIds].sort());
    expect([...stalled].sort()).toEqual([...startedInChild].sort());
    for (const id of startedInChild) expect(completed.get(id)).toBe(2);
    expect(await queue.stats()).toEqual({
      waiting: 0,
      delayed: 0,
      active: 0,
      dead: 0,
      completed: 0,
    });
  });
});
