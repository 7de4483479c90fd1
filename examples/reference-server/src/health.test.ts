import { describe, expect, it, vi } from 'vitest';
import { runChecks } from './health.js';

describe('runChecks', () => {
  it('reports each check and is ok only when all pass', async () => {
    const report = await runChecks(
      { good: () => Promise.resolve(), bad: () => Promise.reject(new Error('down')) },
      1_000,
    );
    expect(report).toEqual({
      ok: false,
      checks: { good: { ok: true }, bad: { ok: false, error: 'down' } },
    });
    expect(await runChecks({}, 10)).toEqual({ ok: true, checks: {} });
  });

  it('fails a check that does not answer in time and aborts its signal', async () => {
    vi.useFakeTimers();
    try {
      let aborted = false;
      const pending = runChecks(
        {
          slow: (signal) =>
            new Promise<void>(() => {
              signal.addEventListener('abort', () => (aborted = true));
            }),
        },
        500,
      );
      await vi.advanceTimersByTimeAsync(500);
      expect(await pending).toEqual({
        ok: false,
        checks: { slow: { ok: false, error: 'no answer within 500 ms' } },
      });
      expect(aborted).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });
});
