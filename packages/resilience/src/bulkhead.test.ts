import { describe, expect, it } from 'vitest';
import { bulkhead, BulkheadRejectedError, InvalidOptionError } from './index.js';
import { ManualClock } from './testing.js';

function gate(): { wait: () => Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { wait: () => promise, open };
}

async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

describe('bulkhead', () => {
  it('runs at most `limit` at once, queues up to `queue`, rejects the rest', async () => {
    const policy = bulkhead(2, 1);
    const g = gate();
    let running = 0;
    let peak = 0;
    const work = async (): Promise<string> => {
      running++;
      peak = Math.max(peak, running);
      await g.wait();
      running--;
      return 'done';
    };
    const calls = [policy.execute(work), policy.execute(work), policy.execute(work)];
    expect(policy.active).toBe(2);
    expect(policy.queued).toBe(1);
    const rejected = await policy.execute(work).catch((e: unknown) => e);
    expect(BulkheadRejectedError.isInstance(rejected)).toBe(true);
    expect(rejected).toMatchObject({
      active: 2,
      queued: 1,
      retryAfterMs: 0,
      code: 'BULKHEAD_REJECTED',
    });
    g.open();
    await expect(Promise.all(calls)).resolves.toEqual(['done', 'done', 'done']);
    expect(peak).toBe(2);
    expect(policy.active).toBe(0);
  });

  it('accepts options and releases the slot when fn throws', async () => {
    const policy = bulkhead({ limit: 1 });
    await expect(policy.execute(() => Promise.reject(new Error('x')))).rejects.toThrow('x');
    await expect(
      policy.execute(() => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    await expect(policy.execute(() => 'free')).resolves.toBe('free');
  });

  it('serves the queue in order', async () => {
    const policy = bulkhead({ limit: 1, queue: 3 });
    const g = gate();
    const order: number[] = [];
    const first = policy.execute(() => g.wait());
    const queued = [1, 2, 3].map((n) => policy.execute(() => order.push(n)));
    g.open();
    await first;
    await Promise.all(queued);
    expect(order).toEqual([1, 2, 3]);
  });

  it('a queued call is abortable: it leaves the queue and rejects with the caller reason', async () => {
    const policy = bulkhead({ limit: 1, queue: 1 });
    const g = gate();
    const first = policy.execute(() => g.wait());
    const controller = new AbortController();
    let ran = false;
    const queued = policy.execute(() => {
      ran = true;
    }, controller.signal);
    expect(policy.queued).toBe(1);
    const reason = new Error('gone');
    controller.abort(reason);
    await expect(queued).rejects.toBe(reason);
    expect(policy.queued).toBe(0);
    g.open();
    await first;
    expect(ran).toBe(false);
  });

  it('rejects a queued call after queueTimeoutMs', async () => {
    const clock = new ManualClock();
    const policy = bulkhead({ limit: 1, queue: 1, queueTimeoutMs: 50, clock });
    const g = gate();
    const first = policy.execute(() => g.wait());
    const queued = policy.execute(() => 'never');
    clock.advance(50);
    const error = await queued.catch((e: unknown) => e);
    expect(BulkheadRejectedError.isInstance(error)).toBe(true);
    expect((error as Error).message).toContain('timed out');
    g.open();
    await first;
    expect(clock.pendingTimers).toBe(0);
  });

  it('clears the queue timer when the call is admitted', async () => {
    const clock = new ManualClock();
    const policy = bulkhead({ limit: 1, queue: 1, queueTimeoutMs: 50, clock });
    const g = gate();
    const first = policy.execute(() => g.wait());
    const queued = policy.execute(() => 'admitted');
    expect(clock.pendingTimers).toBe(1);
    g.open();
    await first;
    await expect(queued).resolves.toBe('admitted');
    expect(clock.pendingTimers).toBe(0);
  });

  it('rejects at once when the caller signal is already aborted', async () => {
    const reason = new Error('before');
    await expect(bulkhead(1).execute(() => 1, AbortSignal.abort(reason))).rejects.toBe(reason);
  });

  it('asyncDispose rejects queued calls, refuses new ones and waits for running ones', async () => {
    const policy = bulkhead({ limit: 1, queue: 5 });
    const g = gate();
    let finished = false;
    const running = policy.execute(async () => {
      await g.wait();
      finished = true;
    });
    const queued = policy.execute(() => 'queued');
    let disposed = false;
    const disposing = policy[Symbol.asyncDispose]().then(() => {
      disposed = true;
    });
    await expect(queued).rejects.toBeInstanceOf(BulkheadRejectedError);
    await expect(queued).rejects.toMatchObject({ reason: 'disposed', message: /is disposed/ });
    await expect(policy.execute(() => 'late')).rejects.toMatchObject({
      code: 'BULKHEAD_REJECTED',
      reason: 'disposed',
    });
    await flush();
    expect(disposed).toBe(false);
    g.open();
    await running;
    await disposing;
    expect(finished).toBe(true);
    await bulkhead(1)[Symbol.asyncDispose]();
  });

  it('fires onRejected', async () => {
    const policy = bulkhead(1);
    const seen: string[] = [];
    policy.onRejected((error) => seen.push(error.code));
    const g = gate();
    const first = policy.execute(() => g.wait());
    await policy.execute(() => 1).catch(() => undefined);
    g.open();
    await first;
    expect(seen).toEqual(['BULKHEAD_REJECTED']);
  });

  it('rejects invalid options naming the option', () => {
    expect(() => bulkhead(0)).toThrow(InvalidOptionError);
    expect(() => bulkhead(1.5)).toThrow('"limit"');
    expect(() => bulkhead(1, -1)).toThrow('"queue"');
    expect(() => bulkhead({ limit: 1, queueTimeoutMs: Number.NaN })).toThrow('"queueTimeoutMs"');
    expect(() => bulkhead({ limit: 1, queue: Infinity })).not.toThrow();
  });
});

describe('bulkhead admission and the caller abort', () => {
  it('never runs a queued call whose caller aborted after its slot was handed over', async () => {
    // The abort lands k microtasks after the running call finishes: for every k, the queued
    // call either never runs (and rejects with the caller reason) or runs with a live signal.
    for (let k = 0; k < 8; k++) {
      const policy = bulkhead(1, 1);
      const g = gate();
      const first = policy.execute(() => g.wait());
      const controller = new AbortController();
      const reason = new Error(`gone ${k}`);
      let ranAborted = false;
      const queued = policy.execute(({ signal }) => {
        if (controller.signal.aborted || signal.aborted) ranAborted = true;
        return 'ran';
      }, controller.signal);
      g.open();
      for (let i = 0; i < k; i++) await Promise.resolve();
      controller.abort(reason);
      await first;
      const outcome = await queued.catch((error: unknown) => error);
      expect(ranAborted, `abort after ${k} microtasks`).toBe(false);
      if (outcome !== 'ran') expect(outcome).toBe(reason);
      await flush();
      expect(policy.active).toBe(0);
      expect(policy.queued).toBe(0);
    }
  });
});
