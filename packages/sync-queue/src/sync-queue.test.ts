import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { QueueBackend } from './backend.js';
import { backoffDelay, resolveRetry } from './backoff.js';
import { PermanentError, SyncQueueError, toError } from './errors.js';
import { MemoryBackend } from './memory-backend.js';
import { SyncQueue } from './sync-queue.js';
import type { DeadEvent, Handler, Job, Worker } from './sync-queue.js';
import { ManualClock } from './testing.js';

/** Advances fake time in small steps until `condition` holds (fails after `maxMs` of fake time). */
async function until(condition: () => boolean, maxMs = 120_000): Promise<void> {
  for (let spent = 0; !condition(); spent += 5) {
    if (spent > maxMs) throw new Error('condition never held');
    await vi.advanceTimersByTimeAsync(5);
  }
}

/** A handler that runs until its signal aborts, then tells `onAbort` the reason and resolves. */
function abortable(onAbort: (reason: unknown) => void): Handler<string> {
  return (_job, { signal }) =>
    new Promise<void>((resolve) => {
      signal.addEventListener('abort', () => {
        onAbort(signal.reason);
        resolve();
      });
    });
}

/** Runs the describe block on fake time; the workers pushed to the list are closed after each test. */
function workersOnFakeTime(): Worker[] {
  const workers: Worker[] = [];
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(async () => {
    const closing = Promise.all(workers.splice(0).map((worker) => worker.close({ timeoutMs: 10 })));
    await vi.advanceTimersByTimeAsync(50);
    await closing;
    vi.useRealTimers();
  });
  return workers;
}

describe('SyncQueue', () => {
  const workers = workersOnFakeTime();

  it('runs a job and hands the handler its id, key, payload and attempt', async () => {
    const queue = new SyncQueue<{ to: string }>({ name: 'basic' });
    const seen: Job<{ to: string }>[] = [];
    const completed: string[] = [];
    queue.onCompleted(({ job }) => completed.push(job.id));
    const { id } = await queue.add({ to: 'a@example.com' }, { key: 'alias:1' });
    expect(await queue.stats()).toEqual({
      waiting: 1,
      delayed: 0,
      active: 0,
      dead: 0,
      completed: 0,
    });
    const worker = queue.process((job) => {
      seen.push(job);
    });
    workers.push(worker);
    await until(() => completed.length === 1);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      id,
      key: 'alias:1',
      payload: { to: 'a@example.com' },
      attempt: 1,
      maxAttempts: 5,
    });
    expect(completed).toEqual([id]);
    expect(worker.lastClaimAt).not.toBeNull();
    expect(await queue.stats()).toEqual({
      waiting: 0,
      delayed: 0,
      active: 0,
      dead: 0,
      completed: 0,
    });
  });

  it('keeps the latest completed jobs when asked, and lists them newest first with parsed payloads', async () => {
    const queue = new SyncQueue<{ n: number }>({ name: 'keep', keepCompleted: { count: 2 } });
    let done = 0;
    queue.onCompleted(() => (done += 1));
    workers.push(queue.process(() => undefined));
    for (let n = 1; n <= 3; n += 1) {
      await queue.add({ n }, { key: `k${n}` });
      await until(() => done === n);
    }
    const kept = await queue.completed.list();
    expect(kept.map((job) => [job.payload, job.key, job.attempts])).toEqual([
      [{ n: 3 }, 'k3', 1],
      [{ n: 2 }, 'k2', 1],
    ]);
    expect((await queue.completed.list({ offset: 1, limit: 1 })).map((job) => job.payload)).toEqual(
      [{ n: 2 }],
    );
    expect(await queue.stats()).toEqual({
      waiting: 0,
      delayed: 0,
      active: 0,
      dead: 0,
      completed: 2,
    });
    await expect(queue.completed.list({ limit: 0 })).rejects.toMatchObject({
      code: 'INVALID_OPTIONS',
    });
  });

  it('keeps no completed job by default or with count 0, and rejects invalid keepCompleted options', async () => {
    for (const options of [{}, { keepCompleted: { count: 0 } }]) {
      const queue = new SyncQueue<string>({ name: 'no-keep', ...options });
      let done = false;
      queue.onCompleted(() => (done = true));
      workers.push(queue.process(() => undefined));
      await queue.add('x');
      await until(() => done);
      expect(await queue.completed.list()).toEqual([]);
      expect((await queue.stats()).completed).toBe(0);
    }
    for (const keepCompleted of [
      { count: -1 },
      { count: 1.5 },
      { count: 1_000_001 },
      { ageMs: 0 },
      'all',
    ]) {
      expect(
        () =>
          new SyncQueue({ name: 'bad-keep', keepCompleted: keepCompleted as { count?: number } }),
      ).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS' }));
    }
  });

  it('coalesces waiting jobs of one key: ten changes, one run with the latest payload', async () => {
    const queue = new SyncQueue<number>({ name: 'coalesce' });
    const results = [];
    for (let version = 1; version <= 10; version += 1)
      results.push(await queue.add(version, { key: 'doc:7' }));
    expect(new Set(results.map((result) => result.id)).size).toBe(1);
    expect(results.filter((result) => result.coalesced)).toHaveLength(9);
    const runs: number[] = [];
    workers.push(queue.process((job) => void runs.push(job.payload)));
    await until(() => runs.length === 1);
    await vi.advanceTimersByTimeAsync(500);
    expect(runs).toEqual([10]);
  });

  it('never runs two jobs of one key at once, and a change made during a run runs after it', async () => {
    const queue = new SyncQueue<number>({ name: 'exclusive' });
    const running = new Map<string, number>();
    let overlap = 0;
    const order: number[] = [];
    const worker = queue.process(
      async (job) => {
        const key = job.key ?? '';
        running.set(key, (running.get(key) ?? 0) + 1);
        if ((running.get(key) ?? 0) > 1) overlap += 1;
        await new Promise((resolve) => setTimeout(resolve, 100));
        order.push(job.payload);
        running.set(key, (running.get(key) ?? 0) - 1);
      },
      { concurrency: 10 },
    );
    workers.push(worker);
    await queue.add(1, { key: 'k' });
    await until(() => worker.active === 1);
    await queue.add(2, { key: 'k' });
    await queue.add(3, { key: 'k' });
    await until(() => order.length === 2);
    await vi.advanceTimersByTimeAsync(500);
    expect(order).toEqual([1, 3]);
    expect(overlap).toBe(0);
  });

  it('retries with exponential backoff and succeeds', async () => {
    const queue = new SyncQueue<string>({
      name: 'retry',
      retry: { initialDelayMs: 1_000, factor: 2, jitter: false },
    });
    const failures: (number | null)[] = [];
    queue.onFailed(({ retryInMs }) => failures.push(retryInMs));
    const attempts: number[] = [];
    let done = false;
    queue.onCompleted(() => (done = true));
    workers.push(
      queue.process((job) => {
        attempts.push(job.attempt);
        if (job.attempt < 3) throw new Error('search index down');
      }),
    );
    await queue.add('sync');
    await until(() => done);
    expect(attempts).toEqual([1, 2, 3]);
    expect(failures).toEqual([1_000, 2_000]);
  });

  it('honours retryAfterMs from the error', async () => {
    const queue = new SyncQueue<string>({ name: 'retry-after' });
    const failures: (number | null)[] = [];
    queue.onFailed(({ retryInMs }) => failures.push(retryInMs));
    workers.push(
      queue.process((job) => {
        if (job.attempt === 1) throw Object.assign(new Error('429'), { retryAfterMs: 7_000 });
      }),
    );
    await queue.add('x');
    await until(() => failures.length === 1);
    expect(failures).toEqual([7_000]);
    expect(await queue.stats()).toMatchObject({ delayed: 1 });
  });

  it('sends a PermanentError straight to the dead letters; they can be listed, retried and purged', async () => {
    const queue = new SyncQueue<{ n: number }>({ name: 'permanent' });
    const dead: string[] = [];
    const payloads: unknown[] = [];
    queue.onDead(({ id, job }) => {
      dead.push(id);
      payloads.push(job?.payload);
    });
    let calls = 0;
    workers.push(
      queue.process((job) => {
        calls += 1;
        if (job.payload.n === 1 && calls === 1) throw new PermanentError('mailbox does not exist');
      }),
    );
    const { id } = await queue.add({ n: 1 });
    await until(() => dead.length === 1);
    expect(calls).toBe(1);
    // The worker that ran the last attempt hands the job over with the event.
    expect(payloads).toEqual([{ n: 1 }]);
    const [letter] = await queue.deadLetters.list();
    expect(letter).toMatchObject({
      id,
      payload: { n: 1 },
      attempts: 1,
      lastError: 'PermanentError: mailbox does not exist',
    });
    expect(await queue.deadLetters.retry(id)).toBe(id);
    await until(() => calls === 2);
    await expect(queue.deadLetters.retry('missing')).rejects.toMatchObject({
      code: 'JOB_NOT_FOUND',
    });
    expect(await queue.deadLetters.purge()).toBe(0);
  });

  it('dead-letters after maxAttempts with the last error, including non-Error throws', async () => {
    const queue = new SyncQueue<string>({
      name: 'exhaust',
      retry: { maxAttempts: 3, initialDelayMs: 10 },
    });
    const thrown: unknown[] = ['a string', { reason: 'object' }, 42];
    let dead = false;
    queue.onDead(() => (dead = true));
    workers.push(
      queue.process((job) => {
        throw thrown[job.attempt - 1];
      }),
    );
    await queue.add('x', { key: 'k' });
    await until(() => dead);
    const [letter] = await queue.deadLetters.list();
    expect(letter?.attempts).toBe(3);
    expect(letter?.lastError).toBe('Error: Non-error thrown: 42');
    expect(await queue.stats()).toEqual({
      waiting: 0,
      delayed: 0,
      active: 0,
      dead: 1,
      completed: 0,
    });
    expect(await queue.deadLetters.purge()).toBe(1);
  });

  it('uses the per-job attempts option', async () => {
    const queue = new SyncQueue<string>({ name: 'attempts' });
    let dead = false;
    queue.onDead(() => (dead = true));
    workers.push(
      queue.process(() => {
        throw new Error('no');
      }),
    );
    await queue.add('x', { attempts: 1 });
    await until(() => dead);
    expect((await queue.deadLetters.list())[0]?.attempts).toBe(1);
  });

  it('renews the lease of a long handler so it is never reclaimed', async () => {
    const queue = new SyncQueue<string>({ name: 'renew', leaseMs: 1_000 });
    const stalled: string[] = [];
    queue.onStalled(({ id }) => stalled.push(id));
    let runs = 0;
    let done = false;
    queue.onCompleted(() => (done = true));
    workers.push(
      queue.process(
        async () => {
          runs += 1;
          await new Promise((resolve) => setTimeout(resolve, 5_000));
        },
        { concurrency: 2 },
      ),
    );
    await queue.add('long');
    await until(() => done);
    expect(runs).toBe(1);
    expect(stalled).toEqual([]);
  });

  it('refuses the late completion of a run whose lease expired; only the new owner counts', async () => {
    const clock = new ManualClock();
    const backend = new MemoryBackend({ clock });
    const queue = new SyncQueue<string>({ name: 'fencing', backend, leaseMs: 1_000, clock });
    const lost: number[] = [];
    const completed: number[] = [];
    const stalled: string[] = [];
    queue.onLeaseLost(({ job }) => lost.push(job.attempt));
    queue.onCompleted(({ job }) => completed.push(job.attempt));
    queue.onStalled(({ id }) => stalled.push(id));
    let releaseFirst!: () => void;
    const firstBlocked = new Promise<void>((resolve) => (releaseFirst = resolve));
    const first = queue.process(async (job) => {
      if (job.attempt === 1) await firstBlocked;
    });
    workers.push(first);
    await queue.add('x', { key: 'k' });
    await until(() => first.active === 1);
    // The first run's process is "paused": its lease expires before it can renew.
    clock.advance(1_001);
    const second = queue.process(() => undefined);
    workers.push(second);
    await until(() => completed.length === 1);
    expect(completed).toEqual([2]);
    expect(stalled).toHaveLength(1);
    releaseFirst();
    await until(() => lost.length === 1);
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

  it('aborts the signal of a run whose lease renewal is refused', async () => {
    const clock = new ManualClock();
    const queue = new SyncQueue<string>({
      name: 'lost',
      backend: new MemoryBackend({ clock }),
      leaseMs: 1_000,
    });
    let reason: unknown;
    const lost: string[] = [];
    queue.onLeaseLost(({ job }) => lost.push(job.id));
    const worker = queue.process(abortable((why) => (reason = why)));
    workers.push(worker);
    await queue.add('x');
    await until(() => worker.active === 1);
    clock.advance(5_000);
    await until(() => lost.length === 1);
    expect(SyncQueueError.isInstance(reason) && reason.code).toBe('LEASE_LOST');
  });

  it('fails a handler that runs past timeoutMs and aborts its signal', async () => {
    const queue = new SyncQueue<string>({ name: 'timeout', retry: { maxAttempts: 1 } });
    const errors: string[] = [];
    queue.onFailed(({ error }) =>
      errors.push(SyncQueueError.isInstance(error) ? error.code : error.message),
    );
    let aborted = false;
    workers.push(
      queue.process(
        (_job, { signal }) =>
          new Promise(() => {
            signal.addEventListener('abort', () => (aborted = true));
          }),
        { timeoutMs: 2_000 },
      ),
    );
    await queue.add('hang');
    await until(() => errors.length === 1);
    expect(errors).toEqual(['HANDLER_TIMEOUT']);
    expect(aborted).toBe(true);
    expect((await queue.stats()).dead).toBe(1);
  });

  it('close() waits for running handlers, then aborts the rest and returns their jobs to waiting', async () => {
    const queue = new SyncQueue<string>({ name: 'close' });
    let signalAborted = false;
    let settle!: () => void;
    const worker = queue.process(
      (_job, { signal }) =>
        new Promise<void>((resolve, reject) => {
          settle = () => reject(new Error('rejected after close'));
          signal.addEventListener('abort', () => (signalAborted = true));
          void resolve;
        }),
      { concurrency: 2 },
    );
    await queue.add('a');
    await until(() => worker.active === 1);
    const closing = worker.close({ timeoutMs: 1_000 });
    await vi.advanceTimersByTimeAsync(1_000);
    await closing;
    expect(worker.closed).toBe(true);
    expect(signalAborted).toBe(true);
    expect(await queue.stats()).toEqual({
      waiting: 1,
      delayed: 0,
      active: 0,
      dead: 0,
      completed: 0,
    });
    settle();
    await vi.advanceTimersByTimeAsync(100);
    expect(await queue.stats()).toEqual({
      waiting: 1,
      delayed: 0,
      active: 0,
      dead: 0,
      completed: 0,
    });
    const attempts: number[] = [];
    const next = queue.process((job) => void attempts.push(job.attempt));
    workers.push(next);
    await until(() => attempts.length === 1);
    expect(attempts).toEqual([1]);
  });

  it('close() lets a handler that finishes in time complete, and records one that fails in time', async () => {
    const queue = new SyncQueue<string>({ name: 'close-graceful', retry: { maxAttempts: 1 } });
    const worker = queue.process(
      (job) =>
        new Promise((resolve, reject) =>
          setTimeout(
            () =>
              job.payload === 'bad'
                ? reject(new Error('failed while closing'))
                : resolve(undefined),
            200,
          ),
        ),
      { concurrency: 2 },
    );
    await queue.addBulk([{ payload: 'a' }, { payload: 'bad' }]);
    await until(() => worker.active === 2);
    const closing = queue.close({ timeoutMs: 5_000 });
    await vi.advanceTimersByTimeAsync(300);
    await closing;
    expect(await queue.stats()).toEqual({
      waiting: 0,
      delayed: 0,
      active: 0,
      dead: 1,
      completed: 0,
    });
    await expect(queue.add('late')).rejects.toMatchObject({ code: 'QUEUE_CLOSED' });
    expect(() => queue.process(() => undefined)).toThrow(SyncQueueError);
  });

  it('keeps claiming after backend errors and reports them', async () => {
    const inner = new MemoryBackend();
    let failClaims = 3;
    const flaky = wrapBackend(inner, {
      claim: (queue, count, leaseMs) => {
        if (failClaims > 0) {
          failClaims -= 1;
          return Promise.reject(new Error('ECONNREFUSED'));
        }
        return inner.claim(queue, count, leaseMs);
      },
    });
    const queue = new SyncQueue<string>({ name: 'flaky', backend: flaky });
    const errors: string[] = [];
    queue.onError(({ error }) => errors.push(error.message));
    let done = false;
    queue.onCompleted(() => (done = true));
    const worker = queue.process(() => undefined);
    workers.push(worker);
    await queue.add('x');
    await until(() => done);
    expect(errors).toEqual(['ECONNREFUSED', 'ECONNREFUSED', 'ECONNREFUSED']);
    expect(worker.lastClaimAt).not.toBeNull();
  });

  it('runs delayed jobs when due', async () => {
    const queue = new SyncQueue<string>({ name: 'delayed' });
    const ran: string[] = [];
    workers.push(queue.process((job) => void ran.push(job.payload)));
    await queue.add('later', { delayMs: 10_000 });
    await vi.advanceTimersByTimeAsync(9_000);
    expect(ran).toEqual([]);
    expect(await queue.stats()).toMatchObject({ delayed: 1 });
    await until(() => ran.length === 1);
    expect(ran).toEqual(['later']);
  });

  it('listener errors never reach the worker and disposed listeners stop receiving', async () => {
    const queue = new SyncQueue<string>({ name: 'listeners' });
    const received: string[] = [];
    queue.onCompleted(() => {
      throw new Error('listener bug');
    });
    const subscription = queue.onCompleted(({ job }) => received.push(job.payload));
    workers.push(queue.process(() => undefined));
    await queue.add('a');
    await until(() => received.length === 1);
    subscription.dispose();
    await queue.add('b');
    await vi.advanceTimersByTimeAsync(500);
    expect(received).toEqual(['a']);
    expect(await queue.stats()).toEqual({
      waiting: 0,
      delayed: 0,
      active: 0,
      dead: 0,
      completed: 0,
    });
  });
});

describe('bad input', () => {
  it.each([
    ['a function', () => undefined],
    ['a Date', new Date()],
    ['a nested bigint', { amount: 1n }],
    ['undefined', undefined],
    ['NaN', { n: Number.NaN }],
    ['a Map', new Map()],
    ['a symbol in an array', [Symbol('s')]],
  ])('rejects %s as a payload and stores nothing', async (_name, payload) => {
    const queue = new SyncQueue<unknown>({ name: 'bad' });
    await queue.add({ fine: true });
    await expect(queue.add(payload)).rejects.toMatchObject({ code: 'INVALID_PAYLOAD' });
    expect((await queue.stats()).waiting).toBe(1);
  });

  it('rejects a circular payload', async () => {
    const queue = new SyncQueue<unknown>({ name: 'bad' });
    const circular: Record<string, unknown> = {};
    circular['self'] = circular;
    await expect(queue.add(circular)).rejects.toMatchObject({ code: 'INVALID_PAYLOAD' });
  });

  it('accepts a shared (non-circular) object twice and null-prototype objects', async () => {
    const queue = new SyncQueue<unknown>({ name: 'ok' });
    const shared = { a: 1 };
    const bare = Object.assign(Object.create(null) as object, { b: 2 });
    await expect(queue.add({ x: shared, y: shared, bare })).resolves.toMatchObject({
      coalesced: false,
    });
  });

  it('rejects payloads over maxPayloadBytes', async () => {
    const queue = new SyncQueue<string>({ name: 'big', maxPayloadBytes: 100 });
    await expect(queue.add('x'.repeat(200))).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    const defaults = new SyncQueue<string>({ name: 'big-default' });
    await expect(defaults.add('x'.repeat(512 * 1024))).rejects.toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
    });
  });

  it('rejects empty, non-string and over-long keys', async () => {
    const queue = new SyncQueue<string>({ name: 'keys', maxKeyBytes: 8 });
    await expect(queue.add('x', { key: '' })).rejects.toMatchObject({ code: 'INVALID_KEY' });
    await expect(queue.add('x', { key: 42 as unknown as string })).rejects.toMatchObject({
      code: 'INVALID_KEY',
    });
    await expect(queue.add('x', { key: 'ééééé' })).rejects.toMatchObject({ code: 'INVALID_KEY' });
  });

  it('validates every item of addBulk before storing any', async () => {
    const queue = new SyncQueue<string>({ name: 'bulk' });
    await expect(
      queue.addBulk([{ payload: 'a' }, { payload: 'b', delayMs: -1 }]),
    ).rejects.toMatchObject({
      code: 'INVALID_OPTIONS',
    });
    expect((await queue.stats()).waiting).toBe(0);
    expect(await queue.addBulk([])).toEqual([]);
    await expect(queue.addBulk('nope' as unknown as [])).rejects.toMatchObject({
      code: 'INVALID_OPTIONS',
    });
    const added = await queue.addBulk([
      { payload: 'a' },
      { payload: 'b', key: 'k' },
      { payload: 'c', key: 'k' },
    ]);
    expect(added.map((result) => result.coalesced)).toEqual([false, false, true]);
  });

  it('rejects invalid options', () => {
    expect(() => new SyncQueue({ name: '' })).toThrow(SyncQueueError);
    expect(() => new SyncQueue({ name: 'a{b}' })).toThrow(SyncQueueError);
    expect(() => new SyncQueue({ name: 'q', leaseMs: 0 })).toThrow(/leaseMs/);
    expect(() => new SyncQueue({ name: 'q', retry: { maxAttempts: 0 } })).toThrow(/maxAttempts/);
    expect(() => new SyncQueue({ name: 'q', retry: { factor: Number.NaN } })).toThrow(/factor/);
    const queue = new SyncQueue({ name: 'q' });
    expect(() => queue.process(() => undefined, { concurrency: 0 })).toThrow(/concurrency/);
    expect(() => queue.process('nope' as unknown as () => void)).toThrow(/handler/);
    return expect(queue.add('x', { attempts: 1.5 })).rejects.toMatchObject({
      code: 'INVALID_OPTIONS',
    });
  });
});

describe('errors and backoff', () => {
  it('recognises errors from another copy of the package by marker', () => {
    const foreign = Object.assign(new Error('x'), {
      code: 'LEASE_LOST',
      [Symbol.for('postern.error')]: '@postern/sync-queue',
    });
    expect(SyncQueueError.isInstance(foreign)).toBe(true);
    expect(SyncQueueError.isInstance(new Error('x'))).toBe(false);
    expect(SyncQueueError.isInstance(null)).toBe(false);
    expect(PermanentError.isInstance(new PermanentError('no'))).toBe(true);
    expect(PermanentError.isInstance(new SyncQueueError('LEASE_LOST', 'x'))).toBe(false);
    const withCause = new SyncQueueError('JOB_NOT_FOUND', 'x', {
      cause: new Error('inner'),
      jobId: '1',
      attempts: 2,
      retryAfterMs: 5,
    });
    expect(withCause).toMatchObject({ jobId: '1', attempts: 2, retryAfterMs: 5 });
    expect((withCause.cause as Error).message).toBe('inner');
  });

  it('turns thrown values into errors', () => {
    expect(toError('s').message).toBe('s');
    expect(toError({ a: 1 }).message).toBe('Non-error thrown: {"a":1}');
    expect(toError(1n).message).toBe('Non-error thrown: 1');
    const error = new Error('e');
    expect(toError(error)).toBe(error);
  });

  it('grows delays exponentially up to the cap, with jitter between half and all of the delay', () => {
    const options = resolveRetry({
      initialDelayMs: 100,
      factor: 3,
      maxDelayMs: 1_000,
      jitter: false,
    });
    expect([1, 2, 3, 4].map((attempt) => backoffDelay(options, attempt, () => 0))).toEqual([
      100, 300, 900, 1_000,
    ]);
    const jittered = resolveRetry({ initialDelayMs: 100, factor: 2 });
    expect(backoffDelay(jittered, 2, () => 0)).toBe(100);
    expect(backoffDelay(jittered, 2, () => 0.999_999)).toBe(200);
  });
});

/** A backend that forwards to `inner` except for the methods given in `overrides`. */
function wrapBackend(inner: QueueBackend, overrides: Partial<QueueBackend>): QueueBackend {
  return {
    add: (queue, jobs) => inner.add(queue, jobs),
    claim: (queue, count, leaseMs) => inner.claim(queue, count, leaseMs),
    extend: (queue, id, token, leaseMs) => inner.extend(queue, id, token, leaseMs),
    complete: (queue, runs, fetch, leaseMs, keep) =>
      inner.complete(queue, runs, fetch, leaseMs, keep),
    fail: (queue, id, token, error, retryInMs) => inner.fail(queue, id, token, error, retryInMs),
    release: (queue, id, token) => inner.release(queue, id, token),
    stats: (queue) => inner.stats(queue),
    listDead: (queue, offset, limit) => inner.listDead(queue, offset, limit),
    listCompleted: (queue, offset, limit) => inner.listCompleted(queue, offset, limit),
    retryDead: (queue, id) => inner.retryDead(queue, id),
    purgeDead: (queue) => inner.purgeDead(queue),
    ...overrides,
  };
}

describe('failure modes', () => {
  const workers = workersOnFakeTime();

  it('never computes a NaN, negative or over-max backoff delay', () => {
    // 0 * 2 ** 2000 is 0 * Infinity = NaN without care.
    const immediate = resolveRetry({ initialDelayMs: 0, maxAttempts: 1_000_000 });
    expect(backoffDelay(immediate, 2_000, () => 0.5)).toBe(0);
    const capped = resolveRetry({ initialDelayMs: 100, maxDelayMs: 1_000 });
    for (const random of [() => Number.NaN, () => 1.5, () => -1, () => Infinity]) {
      const delay = backoffDelay(capped, 10, random);
      expect(Number.isFinite(delay)).toBe(true);
      expect(delay).toBeGreaterThanOrEqual(500);
      expect(delay).toBeLessThanOrEqual(1_000);
    }
  });

  it('retries a failed job even when the random source misbehaves (no job stuck as delayed)', async () => {
    const queue = new SyncQueue<string>({
      name: 'nan-random',
      random: () => Number.NaN,
      retry: { initialDelayMs: 100 },
    });
    const attempts: number[] = [];
    let done = false;
    queue.onCompleted(() => (done = true));
    workers.push(
      queue.process((job) => {
        attempts.push(job.attempt);
        if (job.attempt === 1) throw new Error('first run fails');
      }),
    );
    await queue.add('x', { key: 'k' });
    await until(() => done, 10_000);
    expect(attempts).toEqual([1, 2]);
  });

  it('rejects timer options above 2^31-1 ms that setTimeout would fire at once', () => {
    expect(() => new SyncQueue({ name: 'q', leaseMs: 2 ** 32 })).toThrow(/leaseMs/);
    const queue = new SyncQueue({ name: 'q' });
    expect(() => queue.process(() => undefined, { timeoutMs: 2 ** 31 })).toThrow(/timeoutMs/);
    expect(() => queue.process(() => undefined, { pollIntervalMs: 2 ** 31 })).toThrow(
      /pollIntervalMs/,
    );
    const worker = queue.process(() => undefined, { timeoutMs: 2 ** 31 - 1 });
    workers.push(worker);
  });

  it('close() with a timeout above 2^31-1 ms still waits for a running handler', async () => {
    const queue = new SyncQueue<string>({ name: 'close-huge-timeout' });
    const completed: string[] = [];
    queue.onCompleted(({ job }) => completed.push(job.payload));
    const worker = queue.process(() => new Promise((resolve) => setTimeout(resolve, 5_000)));
    await queue.add('slow');
    await until(() => worker.active === 1);
    const closing = worker.close({ timeoutMs: 2 ** 32 });
    await vi.advanceTimersByTimeAsync(6_000);
    await closing;
    expect(completed).toEqual(['slow']);
    expect(await queue.stats()).toMatchObject({ waiting: 0, active: 0 });
  });

  it('lists dead letters whose stored payload is not valid JSON instead of failing the whole list', async () => {
    const backend = new MemoryBackend();
    const queue = new SyncQueue<{ n: number }>({ name: 'bad-json', backend });
    await backend.add('bad-json', [
      { key: null, payload: '{not json', delayMs: 0, maxAttempts: 5 },
    ]);
    await queue.add({ n: 1 }, { attempts: 1 });
    const dead: string[] = [];
    queue.onDead(({ id }) => dead.push(id));
    workers.push(
      queue.process((job) => {
        throw new PermanentError(`no ${job.payload.n}`);
      }),
    );
    await until(() => dead.length === 2);
    const letters = await queue.deadLetters.list();
    expect(letters.map((letter) => letter.payload)).toEqual([undefined, { n: 1 }]);
    expect(letters[0]).toMatchObject({ rawPayload: '{not json' });
    expect(letters[1]).not.toHaveProperty('rawPayload');
  });

  it('close() refuses a NaN, infinite, negative or non-numeric timeoutMs with INVALID_OPTIONS naming it, and closes nothing', async () => {
    const queue = new SyncQueue<string>({ name: 'close-bad-timeout' });
    const ran: string[] = [];
    const worker = queue.process((job) => void ran.push(job.payload));
    workers.push(worker);
    // A queue without workers must refuse the option just the same.
    const idle = new SyncQueue<string>({ name: 'close-bad-timeout-idle' });
    const bad = [Number.NaN, Infinity, -Infinity, -1, '10' as unknown as number];
    for (const timeoutMs of bad) {
      for (const target of [worker, queue, idle]) {
        const error = await target.close({ timeoutMs }).catch((reason: unknown) => reason);
        expect(SyncQueueError.isInstance(error) && error.code, String(timeoutMs)).toBe(
          'INVALID_OPTIONS',
        );
        expect((error as Error).message).toMatch(
          /^close\.timeoutMs must be a finite number >= 0; got /,
        );
      }
    }
    for (const options of [null, 5, 'fast']) {
      for (const target of [worker, queue, idle]) {
        const closing = target.close(options as unknown as { timeoutMs?: number });
        await expect(closing).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
        await expect(closing).rejects.toThrow(/^close options must be an object/);
      }
    }
    // Nothing was closed by the refused calls: both queues take jobs and the worker runs them.
    expect(worker.closed).toBe(false);
    await queue.add('after');
    await idle.add('after');
    await until(() => ran.length === 1);
    expect(ran).toEqual(['after']);
  });

  it('refuses options objects that are not objects with INVALID_OPTIONS instead of a TypeError', async () => {
    const queue = new SyncQueue<string>({ name: 'null-options' });
    const invalid = (fn: () => unknown): string => {
      try {
        fn();
      } catch (error) {
        if (SyncQueueError.isInstance(error) && error.code === 'INVALID_OPTIONS')
          return error.message;
        throw error;
      }
      throw new Error('expected INVALID_OPTIONS');
    };
    expect(
      invalid(() => queue.process(() => undefined, null as unknown as { concurrency?: number })),
    ).toMatch(/^process options must be an object/);
    for (const list of [queue.deadLetters.list, queue.completed.list]) {
      await expect(list(null as unknown as { limit?: number })).rejects.toMatchObject({
        code: 'INVALID_OPTIONS',
      });
    }
    expect(
      invalid(() => new SyncQueue({ name: 'q', retry: 5 as unknown as { maxAttempts?: number } })),
    ).toMatch(/^retry must be an object/);
    expect(
      invalid(() => new SyncQueue({ name: 'q', retry: { jitter: 'no' as unknown as boolean } })),
    ).toMatch(/^retry\.jitter must be a boolean/);
  });

  it('hands the job to onDead when a claim dead-letters it because the lease of its last attempt expired', async () => {
    const clock = new ManualClock();
    const backend = new MemoryBackend({ clock });
    const name = 'reclaimed-dead';
    const queue = new SyncQueue<{ n: number }>({ name, backend, clock, leaseMs: 1_000 });
    const { id } = await queue.add({ n: 7 }, { key: 'k', attempts: 1 });
    const [bad] = await backend.add(name, [
      { key: null, payload: '{not json', delayMs: 0, maxAttempts: 1 },
    ]);
    // Another process leased both jobs and died: their leases run out unrenewed.
    const { jobs } = await backend.claim(name, 2, 1_000);
    expect(jobs).toHaveLength(2);
    clock.advance(1_001);
    const events: DeadEvent<{ n: number }>[] = [];
    queue.onDead((event) => events.push(event));
    const ran: number[] = [];
    workers.push(queue.process((job) => void ran.push(job.payload.n)));
    await until(() => events.length === 2);
    expect(ran).toEqual([]);
    const byId = new Map(events.map((event) => [event.id, event]));
    expect(byId.get(id)).toMatchObject({
      error: { code: 'LEASE_LOST', jobId: id, attempts: 1 },
      job: {
        id,
        key: 'k',
        payload: { n: 7 },
        attempt: 1,
        maxAttempts: 1,
        createdAt: jobs[0]?.createdAt,
      },
    });
    // Like a job whose handler never ran because its payload is not JSON: the job, payload undefined.
    expect(byId.get(bad?.id ?? '')?.job).toEqual({
      id: bad?.id,
      key: null,
      payload: undefined,
      attempt: 1,
      maxAttempts: 1,
      createdAt: jobs[1]?.createdAt,
    });
  });

  it('hands onDead the same job fields whether a worker ran the last attempt or its lease expired', async () => {
    const clock = new ManualClock();
    const backend = new MemoryBackend({ clock });
    const queue = new SyncQueue<string>({ name: 'dead-shapes', backend, clock, leaseMs: 1_000 });
    const events: DeadEvent<string>[] = [];
    queue.onDead((event) => events.push(event));
    await backend.add('dead-shapes', [{ key: null, payload: '{bad', delayMs: 0, maxAttempts: 1 }]);
    workers.push(queue.process(() => undefined));
    await until(() => events.length === 1);
    // The placeholder job of an unparseable payload carries the Job fields only, no lease token.
    expect(Object.keys(events[0]?.job ?? {}).sort()).toEqual(
      ['attempt', 'createdAt', 'id', 'key', 'maxAttempts', 'payload'].sort(),
    );
  });

  it('aborts the signal once the lease has run out while renewals fail, so the next owner never overlaps', async () => {
    const clock = new ManualClock();
    const inner = new MemoryBackend({ clock });
    const errors: string[] = [];
    const backend = wrapBackend(inner, {
      extend: () => Promise.reject(new Error('ECONNRESET')),
    });
    const queue = new SyncQueue<string>({ name: 'renew-errors', backend, leaseMs: 1_000, clock });
    queue.onError(({ error }) => errors.push(error.message));
    let reason: unknown;
    const worker = queue.process(abortable((why) => (reason = why)));
    workers.push(worker);
    await queue.add('x', { key: 'k' });
    await until(() => worker.active === 1);
    // The first renewal fails, but the lease still has time left: the handler keeps running.
    await vi.advanceTimersByTimeAsync(500);
    clock.advance(500);
    expect(errors).toEqual(['ECONNRESET']);
    expect(reason).toBeUndefined();
    // The lease is over (another worker may reclaim the job now): the handler must stop.
    clock.advance(600);
    await until(() => reason !== undefined, 5_000);
    expect(SyncQueueError.isInstance(reason) && reason.code).toBe('LEASE_LOST');
  });

  it('close() releases the next job fetched by a completion it abandoned, instead of leaving it leased', async () => {
    const inner = new MemoryBackend();
    let holdComplete: (() => void) | null = null;
    const backend = wrapBackend(inner, {
      complete: async (queue, runs, fetch, leaseMs, keep) => {
        await new Promise<void>((resolve) => (holdComplete = resolve));
        return inner.complete(queue, runs, fetch, leaseMs, keep);
      },
    });
    const queue = new SyncQueue<string>({ name: 'close-next', backend, leaseMs: 60_000 });
    const ran: string[] = [];
    const worker = queue.process((job) => void ran.push(job.payload));
    await queue.addBulk([{ payload: 'first' }, { payload: 'second' }]);
    await until(() => holdComplete !== null);
    const closing = worker.close({ timeoutMs: 0 });
    await vi.advanceTimersByTimeAsync(10);
    (holdComplete as unknown as () => void)();
    await vi.advanceTimersByTimeAsync(1_100);
    await closing;
    expect(ran).toEqual(['first']);
    // The abandoned run was released, so its completion was refused and fetched the next job
    // (which may be that same job): it must be back to waiting, not left leased to nobody.
    expect(await queue.stats()).toEqual({
      waiting: 2,
      delayed: 0,
      active: 0,
      dead: 0,
      completed: 0,
    });
  });

  it('reports a backend whose extend throws synchronously instead of crashing the process', async () => {
    const inner = new MemoryBackend();
    const backend = wrapBackend(inner, {
      extend: () => {
        throw new Error('sync extend failure');
      },
    });
    const queue = new SyncQueue<string>({ name: 'sync-throw', backend, leaseMs: 1_000 });
    const errors: string[] = [];
    queue.onError(({ error }) => errors.push(error.message));
    let done = false;
    queue.onCompleted(() => (done = true));
    workers.push(queue.process(() => new Promise((resolve) => setTimeout(resolve, 700))));
    await queue.add('x');
    await until(() => done, 5_000);
    expect(errors).toEqual(['sync extend failure']);
  });

  it('rejects a non-object addBulk item with a typed error', async () => {
    const queue = new SyncQueue<string>({ name: 'bulk-null' });
    await expect(queue.addBulk([null as unknown as { payload: string }])).rejects.toMatchObject({
      code: 'INVALID_OPTIONS',
    });
    expect(await queue.stats()).toMatchObject({ waiting: 0 });
  });

  it('keeps a slot usable when reporting a failure throws (a user random source that throws)', async () => {
    const clock = new ManualClock();
    const queue = new SyncQueue<string>({
      name: 'random-throws',
      backend: new MemoryBackend({ clock }),
      clock,
      leaseMs: 1_000,
      random: () => {
        throw new Error('random exploded');
      },
    });
    const errors: string[] = [];
    queue.onError(({ error }) => errors.push(error.message));
    const ran: string[] = [];
    const worker = queue.process((job) => {
      ran.push(job.payload);
      if (job.payload === 'fails') throw new Error('handler failed');
    });
    workers.push(worker);
    await queue.add('fails');
    await until(() => errors.length === 1, 5_000);
    expect(errors).toEqual(['random exploded']);
    // The slot is free again: the next job runs on the same single-slot worker.
    await queue.add('next');
    await until(() => ran.includes('next'), 5_000);
    expect(worker.active).toBe(0);
  });
});
