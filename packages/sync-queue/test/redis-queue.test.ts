import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { SyncQueue } from '../src/index.js';
import type { DeadEvent, Worker } from '../src/index.js';
import { RedisBackend } from '../src/redis.js';
import { deleteKeys } from './fixtures/servers.js';

const redis = new Redis(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379');
const prefix = `postern-test:sq-queue:${randomUUID()}:`;
const backend = new RedisBackend({ redis, prefix, checkEvictionPolicy: false });

afterAll(async () => {
  await deleteKeys(redis, prefix);
  await redis.quit();
});

/** A deterministic pseudo-random sequence (mulberry32). */
function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

describe('SyncQueue on Redis', () => {
  it('trims kept completed jobs atomically and in bounded steps after the retention shrinks', async () => {
    const queue = `trim-${randomUUID()}`;
    const total = 1_200;
    await backend.add(
      queue,
      Array.from({ length: total + 2 }, (_, n) => ({
        key: null,
        payload: String(n),
        delayMs: 0,
        maxAttempts: 1,
      })),
    );
    const leased = (await backend.claim(queue, total + 2, 60_000)).jobs;
    const runs = leased.map(({ id, token }) => ({ id, token }));
    const first = await backend.complete(queue, runs.slice(0, total), 0, 60_000, {
      count: 5_000,
      ageMs: null,
    });
    expect(first.results.every((result) => result === 'ok')).toBe(true);
    expect((await backend.stats(queue)).completed).toBe(total);
    // One call keeps its own job and deletes at most 1,000 more, so Redis is never blocked for long.
    await backend.complete(queue, runs.slice(total, total + 1), 0, 60_000, {
      count: 1,
      ageMs: null,
    });
    expect((await backend.stats(queue)).completed).toBe(total + 1 - 1_001);
    await backend.complete(queue, runs.slice(total + 1), 0, 60_000, { count: 1, ageMs: null });
    expect((await backend.stats(queue)).completed).toBe(1);
    const [kept] = await backend.listCompleted(queue, 0, 10);
    expect(kept?.payload).toBe(String(total + 1));
    // Trimming deleted the job hashes too, not only the index.
    expect(await redis.exists(...runs.map(({ id }) => `${prefix}{${queue}}:j:${id}`))).toBe(1);
  });

  it('refuses the late completion of a run whose process was blocked past its lease', async () => {
    const queue = new SyncQueue<string>({ name: 'fencing', backend, leaseMs: 300 });
    const lost: number[] = [];
    const completed: number[] = [];
    queue.onLeaseLost(({ job }) => lost.push(job.attempt));
    const allDone = new Promise<void>((resolve) => {
      queue.onCompleted(({ job }) => {
        completed.push(job.attempt);
        resolve();
      });
    });
    const worker = queue.process(
      (job) => {
        // Block the whole event loop, as a CPU-bound handler or a paused VM would: no renewal can run.
        if (job.attempt === 1) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 700);
      },
      { concurrency: 2, pollIntervalMs: 10 },
    );
    await queue.add('x', { key: 'doc' });
    await allDone;
    await worker.close();
    expect(lost).toEqual([1]);
    expect(completed).toEqual([2]);
    expect(await queue.stats()).toEqual({
      waiting: 0,
      delayed: 0,
      active: 0,
      dead: 0,
      completed: 0,
    });
  });

  it('20 workers, 5,000 jobs over 50 keys with random failures: latest payloads run, no key runs concurrently, nothing lost', async () => {
    const random = seeded(42);
    const keys = 50;
    const running = new Map<string, number>();
    let overlaps = 0;
    const completedVersions = new Map<string, number[]>();
    const completedIds = new Set<string>();
    const queues = Array.from(
      { length: 20 },
      (_, index) =>
        new SyncQueue<{ key: string; version: number }>({
          name: 'stress',
          backend,
          leaseMs: 5_000,
          retry: { maxAttempts: 3, initialDelayMs: 5, maxDelayMs: 20 },
          random: seeded(index),
        }),
    );
    const workers: Worker[] = queues.map((queue) => {
      queue.onCompleted(({ job }) => {
        completedIds.add(job.id);
        const versions = completedVersions.get(job.payload.key) ?? [];
        versions.push(job.payload.version);
        completedVersions.set(job.payload.key, versions);
      });
      return queue.process(
        async (job) => {
          const now = (running.get(job.payload.key) ?? 0) + 1;
          running.set(job.payload.key, now);
          if (now > 1) overlaps += 1;
          await new Promise((resolve) => setImmediate(resolve));
          running.set(job.payload.key, now - 1);
          if (random() < 0.3) throw new Error('random failure');
        },
        { concurrency: 5, pollIntervalMs: 5 },
      );
    });
    const [producer] = queues;
    if (producer === undefined) throw new Error('no queue');
    const latest = new Map<string, number>();
    const addedIds = new Set<string>();
    for (let batch = 0; batch < 50; batch += 1) {
      const items = Array.from({ length: 100 }, (_, offset) => {
        const version = batch * 100 + offset;
        const key = `key-${Math.floor(random() * keys)}`;
        latest.set(key, version);
        return { payload: { key, version }, key };
      });
      // Adds race with the workers, as in production: some coalesce, some wait behind a running key.
      for (const result of await producer.addBulk(items)) addedIds.add(result.id);
      await new Promise((resolve) => setImmediate(resolve));
    }
    for (;;) {
      const stats = await producer.stats();
      if (stats.waiting + stats.delayed + stats.active === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await Promise.all(workers.map((worker) => worker.close()));

    expect(overlaps).toBe(0);
    const dead = await producer.deadLetters.list({ limit: 10_000 });
    const deadIds = new Set(dead.map((letter) => letter.id));
    for (const id of addedIds) expect(completedIds.has(id) !== deadIds.has(id)).toBe(true);
    expect(completedIds.size + deadIds.size).toBe(addedIds.size);
    for (const [key, version] of latest) {
      const ran = (completedVersions.get(key) ?? []).includes(version);
      const buried = dead.some(
        (letter) => letter.key === key && letter.payload.version === version,
      );
      expect(ran || buried).toBe(true);
    }
    // A newer change of a key never completes before an older one.
    for (const versions of completedVersions.values()) {
      expect(versions).toEqual([...versions].sort((a, b) => a - b));
    }
    expect(dead.length).toBeGreaterThan(0);
    expect((await producer.stats()).dead).toBe(dead.length);
    expect(await producer.deadLetters.purge()).toBe(dead.length);
  }, 60_000);

  it('never lets stray key state (an owner or pending job that no longer exists) block a key', async () => {
    const name = 'stray';
    const base = `${prefix}{${name}}:`;
    // What a crash of a non-atomic implementation, a manual DEL or eviction could leave behind.
    await redis.hset(`${base}o`, 'owned-by-ghost', '999999');
    await redis.hset(`${base}p`, 'pending-ghost', '999998');
    const queue = new SyncQueue<string>({ name, backend });
    const first = await queue.add('a', { key: 'owned-by-ghost' });
    const second = await queue.add('b', { key: 'pending-ghost' });
    expect(second.coalesced).toBe(false);
    expect(second.id).not.toBe('999998');
    const ran: string[] = [];
    const done = new Promise<void>((resolve) =>
      queue.onCompleted(({ job }) => {
        ran.push(job.id);
        if (ran.length === 2) resolve();
      }),
    );
    const worker = queue.process(() => undefined, { concurrency: 2, pollIntervalMs: 10 });
    await done;
    await worker.close();
    expect(ran.sort()).toEqual([first.id, second.id].sort());
    expect(await redis.hget(`${base}o`, 'owned-by-ghost')).toBeNull();
  });

  it('never lets stray key state that points at a kept completed job block a key or swallow a change', async () => {
    const name = 'stray-completed';
    const base = `${prefix}{${name}}:`;
    const queue = new SyncQueue<string>({ name, backend, keepCompleted: { count: 10 } });
    const ran: string[] = [];
    let wanted = 1;
    let release: () => void = () => undefined;
    queue.onCompleted(({ job }) => {
      ran.push(job.payload);
      if (ran.length === wanted) release();
    });
    const worker = queue.process(() => undefined, { concurrency: 2, pollIntervalMs: 10 });
    let done = new Promise<void>((resolve) => (release = resolve));
    const kept = await queue.add('kept', { key: 'k0' });
    await done;
    // Stray state pointing at the kept job, as a manual HSET or a buggy older script could leave.
    await redis.hset(`${base}o`, 'k1', kept.id);
    await redis.hset(`${base}p`, 'k2', kept.id);
    wanted = 3;
    done = new Promise<void>((resolve) => (release = resolve));
    const owned = await queue.add('after-owner', { key: 'k1' });
    const pending = await queue.add('after-pending', { key: 'k2' });
    expect(pending.coalesced).toBe(false);
    expect(pending.id).not.toBe(kept.id);
    await done;
    await worker.close();
    expect(ran.sort()).toEqual(['after-owner', 'after-pending', 'kept']);
    expect(owned.id).not.toBe(kept.id);
    expect((await queue.completed.list()).map((job) => job.payload)).toEqual(
      expect.arrayContaining(['kept', 'after-owner', 'after-pending']),
    );
  });

  it('delays, dead-letters and retries through the Redis backend', async () => {
    const queue = new SyncQueue<string>({
      name: 'dead',
      backend,
      retry: { maxAttempts: 2, initialDelayMs: 10 },
    });
    const deadIds: string[] = [];
    const dead = new Promise<void>((resolve) =>
      queue.onDead(({ id }) => {
        deadIds.push(id);
        resolve();
      }),
    );
    let fail = true;
    const ran: string[] = [];
    const worker = queue.process(
      (job) => {
        if (fail) throw new Error(`cannot sync ${job.payload}`);
        ran.push(job.payload);
      },
      { pollIntervalMs: 10 },
    );
    const { id } = await queue.add('doc-1', { key: 'doc-1', delayMs: 50 });
    expect((await queue.stats()).delayed).toBe(1);
    await dead;
    const [letter] = await queue.deadLetters.list();
    expect(letter).toMatchObject({
      id,
      key: 'doc-1',
      payload: 'doc-1',
      attempts: 2,
      lastError: 'Error: cannot sync doc-1',
    });
    fail = false;
    const completed = new Promise<void>((resolve) => queue.onCompleted(() => resolve()));
    expect(await queue.deadLetters.retry(id)).toBe(id);
    await completed;
    await worker.close();
    expect(ran).toEqual(['doc-1']);
    expect(deadIds).toEqual([id]);
  });

  it('hands onDead the job when a claim dead-letters it after another process let its last lease expire', async () => {
    const name = `reclaimed-dead-${randomUUID()}`;
    // The other process: its own client and backend, which claims the job and then goes silent.
    const otherRedis = new Redis(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379');
    const other = new RedisBackend({ redis: otherRedis, prefix, checkEvictionPolicy: false });
    const queue = new SyncQueue<{ doc: string }>({ name, backend, leaseMs: 1_000 });
    const { id } = await queue.add({ doc: 'd1' }, { key: 'doc:d1', attempts: 1 });
    const [leased] = (await other.claim(name, 1, 150)).jobs;
    await otherRedis.quit();
    expect(leased).toMatchObject({ id, attempt: 1 });
    const dead = new Promise<DeadEvent<{ doc: string }>>((resolve) => queue.onDead(resolve));
    const worker = queue.process(() => undefined, { pollIntervalMs: 20 });
    const event = await dead;
    await worker.close();
    expect(event).toMatchObject({
      id,
      error: { code: 'LEASE_LOST', attempts: 1 },
      job: {
        id,
        key: 'doc:d1',
        payload: { doc: 'd1' },
        attempt: 1,
        maxAttempts: 1,
        createdAt: leased?.createdAt,
      },
    });
    expect(await queue.deadLetters.list()).toMatchObject([
      { id, payload: { doc: 'd1' }, lastError: 'lease expired on attempt 1' },
    ]);
  });

  it('refuses a fail whose retry delay Redis cannot score before changing anything, so the job is not lost', async () => {
    const queue = `bad-delay-${randomUUID()}`;
    await backend.add(queue, [{ key: 'k', payload: '1', delayMs: 0, maxAttempts: 3 }]);
    const [job] = (await backend.claim(queue, 1, 60_000)).jobs;
    if (job === undefined) throw new Error('nothing claimed');
    for (const delay of [Number.NaN, Number.POSITIVE_INFINITY, -5]) {
      await expect(backend.fail(queue, job.id, job.token, 'boom', delay)).rejects.toThrow(
        /retry delay/,
      );
    }
    expect(await backend.stats(queue)).toMatchObject({ active: 1, waiting: 0, delayed: 0 });
    expect(await backend.fail(queue, job.id, job.token, 'boom', 0)).toBe('retried');
    const [again] = (await backend.claim(queue, 1, 60_000)).jobs;
    expect(again).toMatchObject({ id: job.id, attempt: 2 });
  });

  it('claims around job hashes with missing or malformed fields instead of failing the claim and losing jobs', async () => {
    const queue = `malformed-${randomUUID()}`;
    const base = `${prefix}{${queue}}:`;
    const added = await backend.add(queue, [
      { key: null, payload: '"no counters"', delayMs: 0, maxAttempts: 3 },
      { key: 'k', payload: '"no payload"', delayMs: 0, maxAttempts: 3 },
      { key: null, payload: '"fine"', delayMs: 0, maxAttempts: 3 },
    ]);
    const [noCounters, noPayload, fine] = added.map((result) => result.id);
    await redis.hdel(`${base}j:${String(noCounters)}`, 'at', 'ct');
    await redis.hset(`${base}j:${String(noCounters)}`, 'ma', 'x');
    await redis.hdel(`${base}j:${String(noPayload)}`, 'p');
    const claimed = await backend.claim(queue, 10, 60_000);
    expect(claimed.jobs.map((job) => job.id).sort()).toEqual([noCounters, fine].sort());
    const broken = claimed.jobs.find((job) => job.id === noCounters);
    expect(broken?.attempt).toBe(1);
    expect(Number.isFinite(broken?.maxAttempts)).toBe(true);
    expect(Number.isFinite(broken?.createdAt)).toBe(true);
    // The job without a payload is dead-lettered (visible), not dropped with its key slot left
    // pointing at it, which would swallow every later change of the key.
    expect(claimed.dead).toEqual([]);
    expect(await backend.stats(queue)).toMatchObject({ dead: 1, active: 2 });
    const letters = await new SyncQueue<string>({ name: queue, backend }).deadLetters.list();
    expect(letters).toMatchObject([
      { id: noPayload, payload: undefined, rawPayload: '', lastError: 'stored job has no payload' },
    ]);
    const next = await backend.add(queue, [
      { key: 'k', payload: '"next"', delayMs: 0, maxAttempts: 3 },
    ]);
    expect(next[0]?.coalesced).toBe(false);
    const after = await backend.claim(queue, 10, 60_000);
    expect(after.jobs.map((job) => job.payload)).toEqual(['"next"']);
    // A lease expiring on a job with malformed counters is reclaimed, not a script error.
    await redis.zadd(`${base}a`, 0, String(noCounters));
    await expect(backend.claim(queue, 0, 60_000)).resolves.toMatchObject({
      dead: [noCounters],
    });
  });
});
