import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SETTLED_DAYS, dropOldMarks, markSettled, wasSettled } from './settled.js';

const DAY = 86_400_000;
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function spool(): string {
  const dir = mkdtempSync(join(tmpdir(), 'postern-settled-'));
  dirs.push(dir);
  return dir;
}

describe('settled marks', () => {
  it('remembers a settled job for SETTLED_DAYS days, by spool file name', async () => {
    const dir = spool();
    const start = Date.UTC(2026, 10, 24, 23, 59);
    await markSettled(join(dir, 'a.eml'), start);
    expect(await wasSettled(join(dir, 'a.eml'), start)).toBe(true);
    expect(await wasSettled(join(dir, 'b.eml'), start)).toBe(false);
    expect(await wasSettled(join(dir, 'a.eml'), start + SETTLED_DAYS * DAY)).toBe(true);
    expect(await wasSettled(join(dir, 'a.eml'), start + (SETTLED_DAYS + 1) * DAY)).toBe(false);
  });

  it('finds a mark made just after midnight by a worker whose clock runs a little ahead', async () => {
    const dir = spool();
    const midnight = Date.UTC(2026, 10, 25);
    await markSettled(join(dir, 'a.eml'), midnight + 5_000);
    expect(await wasSettled(join(dir, 'a.eml'), midnight - 5_000)).toBe(true);
  });

  it('drops the folders of days past SETTLED_DAYS, on the first mark of a day and at start-up', async () => {
    const dir = spool();
    const start = Date.UTC(2026, 0, 1, 12);
    await markSettled(join(dir, 'old.eml'), start);
    await markSettled(join(dir, 'newer.eml'), start + 3 * DAY);
    expect(readdirSync(join(dir, 'settled'))).toHaveLength(2);
    // The first mark made SETTLED_DAYS + 1 days later sweeps the oldest day's folder.
    await markSettled(join(dir, 'later.eml'), start + (SETTLED_DAYS + 1) * DAY);
    expect(await wasSettled(join(dir, 'old.eml'), start + (SETTLED_DAYS + 1) * DAY)).toBe(false);
    expect(readdirSync(join(dir, 'settled'))).toHaveLength(2);
    await dropOldMarks(dir, start + (SETTLED_DAYS + 10) * DAY);
    expect(readdirSync(join(dir, 'settled'))).toHaveLength(0);
    await dropOldMarks(spool());
  });
});
