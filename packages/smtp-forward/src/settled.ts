import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { exists } from './claim.js';

/**
 * Days a settled job's mark is kept. A queue that hands a job out again within them (a lease that
 * ran out, the job added again by `pendingSpool` at start-up) finds it settled instead of lost.
 */
export const SETTLED_DAYS = 7;

const DAY_MS = 86_400_000;

// Marks live in `<spool>/settled/<days since the epoch>/<spool file name>`: old days go as whole
// folders, once a day per spool folder (the last day swept, by folder, is kept here).
const swept = new Map<string, number>();

function dayOf(ms: number): number {
  return Math.floor(ms / DAY_MS);
}

function dayFolder(spoolDir: string, day: number): string {
  return join(spoolDir, 'settled', String(day));
}

/** Marks the job spooled at `path` as settled (delivered or bounced); call it before its files go. */
export async function markSettled(path: string, now = Date.now()): Promise<void> {
  const spoolDir = dirname(path);
  const today = dayOf(now);
  const folder = dayFolder(spoolDir, today);
  await mkdir(folder, { recursive: true });
  await writeFile(join(folder, basename(path)), '');
  if (swept.get(spoolDir) !== today) {
    swept.set(spoolDir, today);
    await dropOldMarks(spoolDir, now);
  }
}

/** Deletes the marks of days older than {@link SETTLED_DAYS} in `spoolDir`. */
export async function dropOldMarks(spoolDir: string, now = Date.now()): Promise<void> {
  const root = join(spoolDir, 'settled');
  const days = await readdir(root).catch(() => [] as string[]);
  const oldest = dayOf(now) - SETTLED_DAYS;
  await Promise.all(
    days
      .filter((day) => /^\d+$/.test(day) && Number(day) < oldest)
      .map((day) => rm(join(root, day), { recursive: true, force: true })),
  );
}

/** True when the job spooled at `path` was settled within the last {@link SETTLED_DAYS} days. */
export async function wasSettled(path: string, now = Date.now()): Promise<boolean> {
  const spoolDir = dirname(path);
  const name = basename(path);
  const today = dayOf(now);
  // From tomorrow: a worker whose clock is behind another's by a few seconds at midnight (UTC)
  // must still find the mark the other made.
  for (let day = today + 1; day >= today - SETTLED_DAYS; day -= 1) {
    if (await exists(join(dayFolder(spoolDir, day), name))) return true;
  }
  return false;
}
