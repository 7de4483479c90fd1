import { describe, expect, it } from 'vitest';
import { MemoryBackend } from './memory-backend.js';
import { ManualClock, backendContract } from './testing.js';

backendContract({
  name: 'MemoryBackend',
  create: (clock) => new MemoryBackend({ clock }),
  runner: { describe, it },
});

/** A small seeded generator, so a failing sequence can be replayed. */
function lcg(seed: number): (below: number) => number {
  let state = seed >>> 0;
  return (below) => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state % below;
  };
}

describe('MemoryBackend ready order', () => {
  it.each([1, 2, 3, 42, 2026])(
    'claims due jobs by due time, then age, through retries and releases (seed %i)',
    async (seed) => {
      const random = lcg(seed);
      const clock = new ManualClock();
      const backend = new MemoryBackend({ clock });
      // The model: id -> time it may run, for every job not leased.
      const model = new Map<string, number>();
      const leased: { id: string; token: string }[] = [];
      const due = (): string[] =>
        [...model]
          .filter(([, runAt]) => runAt <= clock.now())
          .sort((a, b) => a[1] - b[1] || Number(a[0]) - Number(b[0]))
          .map(([id]) => id);
      for (let step = 0; step < 400; step += 1) {
        const action = random(10);
        if (action < 3) {
          const delays = Array.from({ length: 1 + random(4) }, () => random(4) * 25);
          const added = await backend.add(
            'order',
            delays.map((delayMs) => ({ key: null, payload: '0', delayMs, maxAttempts: 1_000 })),
          );
          added.forEach((result, index) =>
            model.set(result.id, clock.now() + (delays[index] ?? 0)),
          );
        } else if (action < 6) {
          const count = 1 + random(5);
          const expected = due().slice(0, count);
          const claim = await backend.claim('order', count, 1_000_000);
          expect(claim.jobs.map((job) => job.id)).toEqual(expected);
          for (const job of claim.jobs) {
            model.delete(job.id);
            leased.push({ id: job.id, token: job.token });
          }
          if (claim.jobs.length < count) {
            const next = [...model.values()].reduce<number | null>(
              (min, runAt) => (min === null || runAt < min ? runAt : min),
              null,
            );
            expect(claim.nextDueInMs).toBe(next === null ? null : Math.max(0, next - clock.now()));
          }
        } else if (action < 8 && leased.length > 0) {
          const run = leased.splice(random(leased.length), 1)[0];
          if (run === undefined) continue;
          if (random(2) === 0) {
            const retryInMs = random(4) * 25;
            expect(await backend.fail('order', run.id, run.token, 'Error: again', retryInMs)).toBe(
              'retried',
            );
            model.set(run.id, clock.now() + retryInMs);
          } else {
            expect(await backend.release('order', run.id, run.token)).toBe('ok');
            model.set(run.id, clock.now());
          }
        } else {
          clock.advance(random(3) * 10);
        }
      }
    },
  );
});

describe('MemoryBackend input checks', () => {
  it('refuses a fail with a retry delay it cannot schedule, as the Redis backend does, before changing anything', async () => {
    const clock = new ManualClock();
    const backend = new MemoryBackend({ clock });
    await backend.add('q', [{ key: 'k', payload: '1', delayMs: 0, maxAttempts: 3 }]);
    const [job] = (await backend.claim('q', 1, 60_000)).jobs;
    if (job === undefined) throw new Error('nothing claimed');
    for (const delay of [Number.NaN, Number.POSITIVE_INFINITY, -5]) {
      await expect(backend.fail('q', job.id, job.token, 'boom', delay)).rejects.toThrow(
        /retry delay/,
      );
    }
    expect(await backend.stats('q')).toMatchObject({ active: 1, waiting: 0, delayed: 0 });
    expect(await backend.fail('q', job.id, job.token, 'boom', 0)).toBe('retried');
    const [again] = (await backend.claim('q', 1, 60_000)).jobs;
    expect(again).toMatchObject({ id: job.id, attempt: 2 });
  });
});
