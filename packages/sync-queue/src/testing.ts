// Test helpers for @postern/sync-queue and for authors of third-party backends.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { ClaimResult, FencedResult, NewJob, QueueBackend, RunRef } from './backend.js';
import type { Clock } from './ports.js';

/** A clock that moves only when told to. */
export class ManualClock implements Clock {
  #now: number;

  constructor(start = 1_700_000_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  /** Moves time forward by `ms`. */
  advance(ms: number): void {
    this.#now += ms;
  }
}

/** The parts of a test runner the contract suite needs (vitest, jest, node:test all fit). */
export interface ContractRunner {
  describe: (name: string, body: () => void) => void;
  it: (name: string, body: () => Promise<void>) => void;
}

/** Options of backendContract. */
export interface BackendContractOptions {
  /** Shown in test names. */
  name: string;
  /** Returns the backend under test, reading time from `clock`. May return the same backend each time. */
  create(clock: ManualClock): QueueBackend | Promise<QueueBackend>;
  /** describe and it from your test runner. */
  runner: ContractRunner;
}

async function completeOne(
  backend: QueueBackend,
  queue: string,
  run: RunRef,
  fetch: number,
): Promise<{ result: FencedResult | undefined; next: ClaimResult | null }> {
  const { results, next } = await backend.complete(
    queue,
    [{ id: run.id, token: run.token }],
    fetch,
    1_000,
  );
  assert.equal(results.length, 1);
  return { result: results[0], next };
}

function job(payload: unknown, options: Partial<Omit<NewJob, 'payload'>> = {}): NewJob {
  return { key: null, delayMs: 0, maxAttempts: 3, ...options, payload: JSON.stringify(payload) };
}

/**
 * Registers the shared contract tests of QueueBackend. Every backend, ours or a third party's,
 * must pass them. Each test uses its own queue name, so one backend instance may serve them all.
 */
export function backendContract(options: BackendContractOptions): void {
  const { describe, it } = options.runner;
  const setup = async (): Promise<{ backend: QueueBackend; clock: ManualClock; queue: string }> => {
    const clock = new ManualClock();
    return { backend: await options.create(clock), clock, queue: `contract-${randomUUID()}` };
  };

  describe(`QueueBackend contract: ${options.name}`, () => {
    it('leases an added job with attempt 1 and a fencing token, then completes it', async () => {
      const { backend, queue } = await setup();
      const [added] = await backend.add(queue, [job({ n: 1 })]);
      assert.ok(added);
      assert.equal(added.coalesced, false);
      const claim = await backend.claim(queue, 10, 1_000);
      assert.equal(claim.jobs.length, 1);
      const leased = claim.jobs[0];
      assert.ok(leased);
      assert.equal(leased.id, added.id);
      assert.equal(leased.attempt, 1);
      assert.equal(leased.payload, '{"n":1}');
      assert.notEqual(leased.token, '');
      assert.deepEqual(await backend.stats(queue), {
        waiting: 0,
        delayed: 0,
        active: 1,
        dead: 0,
        completed: 0,
      });
      assert.equal((await completeOne(backend, queue, leased, 0)).result, 'ok');
      assert.equal((await completeOne(backend, queue, leased, 0)).result, 'stale');
      assert.deepEqual(await backend.stats(queue), {
        waiting: 0,
        delayed: 0,
        active: 0,
        dead: 0,
        completed: 0,
      });
    });

    it('gives distinct ids to unkeyed jobs and leases them in order', async () => {
      const { backend, queue } = await setup();
      const added = await backend.add(queue, [job(1), job(2), job(3)]);
      assert.equal(new Set(added.map((result) => result.id)).size, 3);
      const claim = await backend.claim(queue, 2, 1_000);
      assert.deepEqual(
        claim.jobs.map((leased) => leased.payload),
        ['1', '2'],
      );
      assert.equal(new Set(claim.jobs.map((leased) => leased.token)).size, 2);
    });

    it('coalesces jobs with the same key while waiting: the latest payload wins, one run', async () => {
      const { backend, queue } = await setup();
      const first = await backend.add(queue, [job('v1', { key: 'user:1' })]);
      const second = await backend.add(queue, [
        job('v2', { key: 'user:1' }),
        job('other', { key: 'user:2' }),
      ]);
      assert.equal(second[0]?.id, first[0]?.id);
      assert.equal(second[0]?.coalesced, true);
      assert.equal(second[1]?.coalesced, false);
      const claim = await backend.claim(queue, 10, 1_000);
      assert.deepEqual(claim.jobs.map((leased) => leased.payload).sort(), ['"other"', '"v2"']);
    });

    it('never leases two jobs of one key at once; a change during a run waits in the single pending slot', async () => {
      const { backend, queue } = await setup();
      await backend.add(queue, [job('a', { key: 'k' })]);
      const [running] = (await backend.claim(queue, 10, 1_000)).jobs;
      assert.ok(running);
      const [b] = await backend.add(queue, [job('b', { key: 'k' })]);
      const [c] = await backend.add(queue, [job('c', { key: 'k' })]);
      assert.equal(b?.coalesced, false);
      assert.equal(c?.id, b?.id);
      assert.equal(c?.coalesced, true);
      assert.equal((await backend.claim(queue, 10, 1_000)).jobs.length, 0);
      assert.deepEqual(await backend.stats(queue), {
        waiting: 1,
        delayed: 0,
        active: 1,
        dead: 0,
        completed: 0,
      });
      const done = await completeOne(backend, queue, running, 5);
      assert.equal(done.result, 'ok');
      assert.deepEqual(
        done.next?.jobs.map((leased) => leased.payload),
        ['"c"'],
      );
    });

    it('holds delayed jobs until due and reports when the next one is due', async () => {
      const { backend, queue, clock } = await setup();
      await backend.add(queue, [job('later', { delayMs: 5_000 })]);
      const early = await backend.claim(queue, 1, 1_000);
      assert.equal(early.jobs.length, 0);
      assert.equal(early.nextDueInMs, 5_000);
      assert.deepEqual(await backend.stats(queue), {
        waiting: 0,
        delayed: 1,
        active: 0,
        dead: 0,
        completed: 0,
      });
      clock.advance(5_000);
      assert.equal((await backend.claim(queue, 1, 1_000)).jobs.length, 1);
    });

    it('refuses every state change from a run whose lease expired (fencing), and reclaims the job', async () => {
      const { backend, queue, clock } = await setup();
      await backend.add(queue, [job('x', { key: 'k' })]);
      const [first] = (await backend.claim(queue, 1, 1_000)).jobs;
      assert.ok(first);
      clock.advance(1_000);
      assert.equal(await backend.extend(queue, first.id, first.token, 1_000), 'stale');
      assert.equal((await completeOne(backend, queue, first, 0)).result, 'stale');
      assert.equal(await backend.fail(queue, first.id, first.token, 'late', 0), 'stale');
      assert.equal(await backend.release(queue, first.id, first.token), 'stale');
      const reclaim = await backend.claim(queue, 1, 1_000);
      assert.deepEqual(reclaim.stalled, [first.id]);
      const [second] = reclaim.jobs;
      assert.ok(second);
      assert.equal(second.id, first.id);
      assert.equal(second.attempt, 2);
      assert.notEqual(second.token, first.token);
      assert.equal((await completeOne(backend, queue, first, 0)).result, 'stale');
      assert.equal((await completeOne(backend, queue, second, 0)).result, 'ok');
    });

    it('keeps a renewed lease alive past its first deadline', async () => {
      const { backend, queue, clock } = await setup();
      await backend.add(queue, [job('x')]);
      const [leased] = (await backend.claim(queue, 1, 1_000)).jobs;
      assert.ok(leased);
      clock.advance(600);
      assert.equal(await backend.extend(queue, leased.id, leased.token, 1_000), 'ok');
      clock.advance(600);
      const claim = await backend.claim(queue, 1, 1_000);
      assert.deepEqual(claim.stalled, []);
      assert.equal((await completeOne(backend, queue, leased, 0)).result, 'ok');
    });

    it('dead-letters a job whose lease expires on its last attempt and frees its key', async () => {
      const { backend, queue, clock } = await setup();
      await backend.add(queue, [job('x', { key: 'k', maxAttempts: 1 })]);
      const [leased] = (await backend.claim(queue, 1, 1_000)).jobs;
      assert.ok(leased);
      await backend.add(queue, [job('y', { key: 'k' })]);
      clock.advance(1_000);
      const claim = await backend.claim(queue, 5, 1_000);
      assert.deepEqual(claim.dead, [leased.id]);
      // deadJobs is optional (the dead event then has no job), but when given it must be right.
      if (claim.deadJobs !== undefined) {
        assert.deepEqual(claim.deadJobs, [
          {
            id: leased.id,
            key: 'k',
            payload: '"x"',
            attempt: 1,
            maxAttempts: 1,
            createdAt: leased.createdAt,
          },
        ]);
      }
      assert.deepEqual(
        claim.jobs.map((next) => next.payload),
        ['"y"'],
      );
      const [record] = await backend.listDead(queue, 0, 10);
      assert.equal(record?.id, leased.id);
      assert.match(record?.lastError ?? '', /lease expired/);
    });

    it('retries a failed run after its delay, keeping the key blocked so order survives', async () => {
      const { backend, queue, clock } = await setup();
      await backend.add(queue, [job('old', { key: 'k' })]);
      const [first] = (await backend.claim(queue, 1, 1_000)).jobs;
      assert.ok(first);
      await backend.add(queue, [job('new', { key: 'k' })]);
      assert.equal(
        await backend.fail(queue, first.id, first.token, 'Error: boom', 2_000),
        'retried',
      );
      assert.deepEqual(await backend.stats(queue), {
        waiting: 1,
        delayed: 1,
        active: 0,
        dead: 0,
        completed: 0,
      });
      assert.equal((await backend.claim(queue, 5, 1_000)).jobs.length, 0);
      clock.advance(2_000);
      const retried = (await backend.claim(queue, 5, 1_000)).jobs;
      assert.deepEqual(
        retried.map((leased) => [leased.payload, leased.attempt]),
        [['"old"', 2]],
      );
      const [again] = retried;
      assert.ok(again);
      const done = await completeOne(backend, queue, again, 5);
      assert.deepEqual(
        done.next?.jobs.map((leased) => leased.payload),
        ['"new"'],
      );
    });

    it('dead-letters on a null retry, keeps the last error, and frees the key', async () => {
      const { backend, queue } = await setup();
      await backend.add(queue, [job('x', { key: 'k' })]);
      const [leased] = (await backend.claim(queue, 1, 1_000)).jobs;
      assert.ok(leased);
      await backend.add(queue, [job('y', { key: 'k' })]);
      assert.equal(
        await backend.fail(queue, leased.id, leased.token, 'Error: final', null),
        'dead',
      );
      assert.deepEqual(await backend.stats(queue), {
        waiting: 1,
        delayed: 0,
        active: 0,
        dead: 1,
        completed: 0,
      });
      const [record] = await backend.listDead(queue, 0, 10);
      assert.deepEqual(
        record && {
          id: record.id,
          key: record.key,
          payload: record.payload,
          attempts: record.attempts,
          lastError: record.lastError,
        },
        { id: leased.id, key: 'k', payload: '"x"', attempts: 1, lastError: 'Error: final' },
      );
      assert.deepEqual(
        (await backend.claim(queue, 5, 1_000)).jobs.map((next) => next.payload),
        ['"y"'],
      );
    });

    it('retries and purges dead letters', async () => {
      const { backend, queue } = await setup();
      await backend.add(queue, [job('a'), job('b')]);
      for (const leased of (await backend.claim(queue, 2, 1_000)).jobs) {
        await backend.fail(queue, leased.id, leased.token, 'Error: no', null);
      }
      const dead = await backend.listDead(queue, 0, 10);
      assert.equal(dead.length, 2);
      assert.equal((await backend.listDead(queue, 1, 10)).length, 1);
      const first = dead[0];
      assert.ok(first);
      assert.equal(await backend.retryDead(queue, first.id), first.id);
      assert.equal(await backend.retryDead(queue, first.id), null);
      assert.equal(await backend.retryDead(queue, 'no-such-id'), null);
      const [rerun] = (await backend.claim(queue, 5, 1_000)).jobs;
      assert.equal(rerun?.id, first.id);
      assert.equal(rerun?.attempt, 1);
      assert.equal(await backend.purgeDead(queue), 1);
      assert.deepEqual(await backend.listDead(queue, 0, 10), []);
      assert.equal((await backend.stats(queue)).dead, 0);
    });

    it('lets a newer waiting change of the same key supersede a retried dead letter', async () => {
      const { backend, queue } = await setup();
      await backend.add(queue, [job('old', { key: 'k' })]);
      const [leased] = (await backend.claim(queue, 1, 1_000)).jobs;
      assert.ok(leased);
      await backend.fail(queue, leased.id, leased.token, 'Error: no', null);
      const [newer] = await backend.add(queue, [job('new', { key: 'k' })]);
      assert.equal(await backend.retryDead(queue, leased.id), newer?.id);
      assert.deepEqual(
        (await backend.claim(queue, 5, 1_000)).jobs.map((next) => next.payload),
        ['"new"'],
      );
      assert.equal((await backend.stats(queue)).dead, 0);
    });

    it('returns a released job to waiting without counting the run', async () => {
      const { backend, queue } = await setup();
      await backend.add(queue, [job('x', { key: 'k' })]);
      const [leased] = (await backend.claim(queue, 1, 1_000)).jobs;
      assert.ok(leased);
      assert.equal(await backend.release(queue, leased.id, leased.token), 'ok');
      assert.equal((await completeOne(backend, queue, leased, 0)).result, 'stale');
      const [again] = (await backend.claim(queue, 1, 1_000)).jobs;
      assert.equal(again?.id, leased.id);
      assert.equal(again?.attempt, 1);
    });

    it('completes several runs in one step, refusing stale ones, and claims more in the same step', async () => {
      const { backend, queue } = await setup();
      await backend.add(queue, [job(1), job(2), job(3), job(4)]);
      const [a, b] = (await backend.claim(queue, 2, 1_000)).jobs;
      assert.ok(a && b);
      const reply = await backend.complete(
        queue,
        [
          { id: a.id, token: a.token },
          { id: b.id, token: 'forged' },
        ],
        2,
        1_000,
      );
      assert.deepEqual(reply.results, ['ok', 'stale']);
      assert.deepEqual(
        reply.next?.jobs.map((leased) => leased.payload),
        ['3', '4'],
      );
      assert.deepEqual(await backend.stats(queue), {
        waiting: 0,
        delayed: 0,
        active: 3,
        dead: 0,
        completed: 0,
      });
    });

    it('deletes a completed job unless asked to keep it', async () => {
      const { backend, queue } = await setup();
      await backend.add(queue, [job('gone')]);
      const [leased] = (await backend.claim(queue, 1, 1_000)).jobs;
      assert.ok(leased);
      assert.equal((await completeOne(backend, queue, leased, 0)).result, 'ok');
      assert.deepEqual(await backend.listCompleted(queue, 0, 10), []);
      assert.equal((await backend.stats(queue)).completed, 0);
    });

    it('keeps the latest completed jobs up to the count, trimmed in the step that completes', async () => {
      const { backend, queue, clock } = await setup();
      const keep = { count: 2, ageMs: null };
      const start = clock.now();
      const added = await backend.add(queue, [
        job('a', { key: 'k1' }),
        job('b'),
        job('c', { key: 'k3' }),
      ]);
      for (const leased of (await backend.claim(queue, 3, 60_000)).jobs) {
        clock.advance(10);
        const reply = await backend.complete(
          queue,
          [{ id: leased.id, token: leased.token }],
          0,
          1_000,
          keep,
        );
        assert.deepEqual(reply.results, ['ok']);
      }
      assert.equal((await backend.stats(queue)).completed, 2);
      const kept = await backend.listCompleted(queue, 0, 10);
      assert.deepEqual(kept, [
        {
          id: added[2]?.id,
          key: 'k3',
          payload: '"c"',
          attempts: 1,
          createdAt: start,
          completedAt: start + 30,
        },
        {
          id: added[1]?.id,
          key: null,
          payload: '"b"',
          attempts: 1,
          createdAt: start,
          completedAt: start + 20,
        },
      ]);
      assert.deepEqual(
        (await backend.listCompleted(queue, 1, 5)).map((record) => record.payload),
        ['"b"'],
      );
      const [last] = kept;
      assert.ok(last);
      assert.deepEqual(
        (await backend.complete(queue, [{ id: last.id, token: 'forged' }], 0, 1_000, keep)).results,
        ['stale'],
      );
      assert.deepEqual(await backend.stats(queue), {
        waiting: 0,
        delayed: 0,
        active: 0,
        dead: 0,
        completed: 2,
      });
    });

    it('drops kept completed jobs once they are ageMs old, when a later job completes', async () => {
      const { backend, queue, clock } = await setup();
      const keep = { count: 100, ageMs: 1_000 };
      await backend.add(queue, [job('a'), job('b'), job('c')]);
      const [a, b, c] = (await backend.claim(queue, 3, 60_000)).jobs;
      assert.ok(a && b && c);
      await backend.complete(queue, [{ id: a.id, token: a.token }], 0, 1_000, keep);
      clock.advance(600);
      await backend.complete(queue, [{ id: b.id, token: b.token }], 0, 1_000, keep);
      assert.deepEqual(
        (await backend.listCompleted(queue, 0, 10)).map((record) => record.payload),
        ['"b"', '"a"'],
      );
      clock.advance(400);
      await backend.complete(queue, [{ id: c.id, token: c.token }], 0, 1_000, keep);
      assert.deepEqual(
        (await backend.listCompleted(queue, 0, 10)).map((record) => record.payload),
        ['"c"', '"b"'],
      );
      assert.equal((await backend.stats(queue)).completed, 2);
    });

    it('never lets a kept completed job hold its key or absorb a later change', async () => {
      const { backend, queue } = await setup();
      const keep = { count: 10, ageMs: null };
      await backend.add(queue, [job('first', { key: 'k' })]);
      const [first] = (await backend.claim(queue, 1, 1_000)).jobs;
      assert.ok(first);
      await backend.complete(queue, [{ id: first.id, token: first.token }], 0, 1_000, keep);
      const [second] = await backend.add(queue, [job('second', { key: 'k' })]);
      assert.equal(second?.coalesced, false);
      assert.notEqual(second?.id, first.id);
      const reclaimed = await backend.claim(queue, 5, 1_000);
      assert.deepEqual(
        reclaimed.jobs.map((leased) => [leased.payload, leased.attempt]),
        [['"second"', 1]],
      );
      assert.equal(await backend.retryDead(queue, first.id), null);
      assert.deepEqual(
        (await backend.listCompleted(queue, 0, 10)).map((record) => record.payload),
        ['"first"'],
      );
    });

    it('trims jobs kept earlier when a later completion keeps none', async () => {
      const { backend, queue } = await setup();
      await backend.add(queue, [job('a'), job('b')]);
      const [a, b] = (await backend.claim(queue, 2, 1_000)).jobs;
      assert.ok(a && b);
      await backend.complete(queue, [{ id: a.id, token: a.token }], 0, 1_000, {
        count: 5,
        ageMs: null,
      });
      assert.equal((await backend.stats(queue)).completed, 1);
      await backend.complete(queue, [{ id: b.id, token: b.token }], 0, 1_000);
      assert.equal((await backend.stats(queue)).completed, 0);
      assert.deepEqual(await backend.listCompleted(queue, 0, 10), []);
    });

    it('keeps queues apart', async () => {
      const { backend, queue } = await setup();
      await backend.add(queue, [job('mine', { key: 'k' })]);
      const other = `${queue}-other`;
      await backend.add(other, [job('theirs', { key: 'k' })]);
      assert.equal((await backend.claim(other, 5, 1_000)).jobs[0]?.payload, '"theirs"');
      assert.equal((await backend.claim(queue, 5, 1_000)).jobs[0]?.payload, '"mine"');
    });
  });
}
