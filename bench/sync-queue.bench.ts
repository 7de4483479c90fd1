/**
 * @postern/sync-queue against BullMQ 6.7.0 in one run, on the same Redis (REDIS_URL, default
 * redis://127.0.0.1:6379), 20,000 no-op jobs per phase, median of 3 rounds, contenders
 * interleaved round by round: jobs/s of `add` one by one (each awaited), `addBulk` (one call),
 * and draining a full queue with one worker at concurrency 1 and 50. Both keep no completed jobs
 * (BullMQ with removeOnComplete), except in the last phase, which drains at concurrency 50 keeping
 * the latest 1,000 completed jobs (ours: keepCompleted { count: 1000 }; BullMQ:
 * removeOnComplete { count: 1000 }). Ours runs with its full guarantees on (fencing tokens,
 * lease renewal, key bookkeeping). Build the package first (`cd packages/sync-queue && npx tsup`):
 * `@postern/sync-queue` resolves to its dist.
 */
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { SyncQueue } from '@postern/sync-queue';
import { RedisBackend } from '@postern/sync-queue/redis';
import type { BenchResult } from './harness.ts';
import { progress, ratio, report } from './harness.ts';

const JOBS = 20_000;
const ROUNDS = 3;
const redisUrl = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const bullmqVersion = (createRequire(import.meta.url)('bullmq/package.json') as { version: string })
  .version;
const runId = randomUUID().slice(0, 8);

type Phase = 'add' | 'addBulk' | 'drain c1' | 'drain c50' | 'drain c50 keep 1k';
const PHASES: Phase[] = ['add', 'addBulk', 'drain c1', 'drain c50', 'drain c50 keep 1k'];
const KEEP_COMPLETED = 1_000;

interface Contender {
  name: string;
  /** Runs one phase on a fresh queue and returns the elapsed ms. */
  phase(phase: Phase, round: number): Promise<number>;
  close(): Promise<void>;
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  let timer: NodeJS.Timeout | undefined;
  // A phase that never finishes is a bug to report, not a bench to wait on forever.
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('phase took over 60 s')), 60_000);
  });
  try {
    await Promise.race([work(), guard]);
  } finally {
    clearTimeout(timer);
  }
  return performance.now() - start;
}

function ours(): Contender {
  const redis = new Redis(redisUrl);
  const prefix = `bench:sq:${runId}:`;
  const backend = new RedisBackend({ redis, prefix });
  const queueFor = (phase: Phase, round: number): SyncQueue<{ i: number }> =>
    new SyncQueue<{ i: number }>({
      name: `${phase}-${round}`,
      backend,
      ...(phase === 'drain c50 keep 1k' ? { keepCompleted: { count: KEEP_COMPLETED } } : {}),
    });
  return {
    name: '@postern/sync-queue',
    async phase(phase, round) {
      const queue = queueFor(phase, round);
      const items = Array.from({ length: JOBS }, (_, i) => ({ payload: { i } }));
      if (phase === 'add') {
        return timed(async () => {
          for (let i = 0; i < JOBS; i += 1) await queue.add({ i });
        });
      }
      if (phase === 'addBulk') return timed(() => queue.addBulk(items));
      await queue.addBulk(items);
      const concurrency = phase === 'drain c1' ? 1 : 50;
      return timed(async () => {
        let done = 0;
        const finished = new Promise<void>((resolve) =>
          queue.onCompleted(() => {
            done += 1;
            if (done === JOBS) resolve();
          }),
        );
        const worker = queue.process(() => undefined, { concurrency });
        await finished;
        await worker.close();
      });
    },
    async close() {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await redis.del(...keys);
      } while (cursor !== '0');
      await redis.quit();
    },
  };
}

function bullmq(): Contender {
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const prefix = `bench:bull:${runId}`;
  const queues: Queue[] = [];
  const workerConnections: Redis[] = [];
  return {
    name: `bullmq ${bullmqVersion}`,
    async phase(phase, round) {
      const name = `${phase.replaceAll(' ', '-')}-${round}`;
      const removeOnComplete = phase === 'drain c50 keep 1k' ? { count: KEEP_COMPLETED } : true;
      const queue = new Queue(name, {
        connection,
        prefix,
        defaultJobOptions: { removeOnComplete, removeOnFail: true },
      });
      queues.push(queue);
      const items = Array.from({ length: JOBS }, (_, i) => ({ name: 'job', data: { i } }));
      if (phase === 'add') {
        return timed(async () => {
          for (let i = 0; i < JOBS; i += 1) await queue.add('job', { i });
        });
      }
      if (phase === 'addBulk') return timed(() => queue.addBulk(items));
      await queue.addBulk(items);
      const concurrency = phase === 'drain c1' ? 1 : 50;
      return timed(async () => {
        let done = 0;
        let worker: Worker | undefined;
        const finished = new Promise<void>((resolve) => {
          const workerConnection = new Redis(redisUrl, { maxRetriesPerRequest: null });
          workerConnections.push(workerConnection);
          worker = new Worker(name, () => Promise.resolve(), {
            connection: workerConnection,
            prefix,
            concurrency,
          });
          worker.on('completed', () => {
            done += 1;
            if (done === JOBS) resolve();
          });
        });
        await finished;
        await worker?.close();
      });
    },
    async close() {
      for (const queue of queues) {
        await queue.obliterate({ force: true });
        await queue.close();
      }
      await connection.quit();
      await Promise.all(workerConnections.map((workerConnection) => workerConnection.quit()));
    },
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

const contenders = [ours(), bullmq()];
const samples = new Map<string, number[]>();
for (let round = 0; round < ROUNDS; round += 1) {
  for (const phase of PHASES) {
    for (const contender of contenders) {
      const elapsedMs = await contender.phase(phase, round);
      const key = `${contender.name} | ${phase}`;
      samples.set(key, [...(samples.get(key) ?? []), (JOBS * 1000) / elapsedMs]);
      progress(`round ${round + 1} ${key}: ${Math.round((JOBS * 1000) / elapsedMs)} jobs/s`);
    }
  }
}
for (const contender of contenders) await contender.close();

const results: BenchResult[] = [];
const ratios: Record<string, number> = {};
for (const phase of PHASES) {
  const [mine, peer] = contenders.map((contender): BenchResult => {
    const rates = samples.get(`${contender.name} | ${phase}`) ?? [];
    return {
      name: `${contender.name}: ${phase}`,
      opsPerSec: Math.round(median(rates)),
      unit: 'jobs/s',
      jobs: JOBS,
      rounds: ROUNDS,
      spreadPct: Number(
        (((Math.max(...rates) - Math.min(...rates)) / median(rates)) * 100).toFixed(1),
      ),
    };
  });
  if (mine === undefined || peer === undefined) throw new Error('missing results');
  results.push(mine, peer);
  ratios[`sync-queue/bullmq ${phase}`] = ratio(mine, peer);
}
report(
  `@postern/sync-queue vs BullMQ ${bullmqVersion}: ${JOBS.toLocaleString('en-US')} no-op jobs, jobs/s (median of ${ROUNDS})`,
  results,
  ratios,
);
