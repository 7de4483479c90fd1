// Claims on spooled jobs. A worker that delivers or bounces a job first creates a claim file beside
// its spool, exclusively (written whole to a temporary file, then link()ed in place, which fails when
// a claim exists), so two workers in any processes sharing the spool directory never act on one job
// at once: a queue that lost a lease and handed the job out again, or dead-lettered it while the
// first worker was still sending, cannot make a duplicate send or a bounce for mail that was
// delivered. A claim whose holder died (same machine and pid namespace: its pid is gone) or stopped
// refreshing it (anywhere: refreshed over the time to live ago) is stale and taken over. Machines
// sharing a spool need clocks within the time to live of each other.
// What is left: taking over a stale claim reads it, then removes it only if it is unchanged; two
// workers doing that within the same instant can, rarely, both proceed. Delivery stays at least once.
import { randomUUID } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { link, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';

/** A claim older than this, by its holder's last refresh, is stale. */
export const CLAIM_TTL_MS = 60_000;
/** A holder refreshes its claim this often. */
const REFRESH_MS = CLAIM_TTL_MS / 3;
/** The suffix of the temporary file a claim is written to before it is linked in place. */
export const CLAIM_TEMP_SUFFIX = '.claimtmp';

/** Best effort: the text of a Linux /proc entry, or '' elsewhere. */
function procText(read: () => string): string {
  try {
    return read().trim();
  } catch {
    return '';
  }
}

/**
 * Where a pid means something: the host name alone is not enough, since containers on the host
 * network share it and often all run as pid 1. The boot id and the pid namespace tell them apart.
 */
export const CLAIM_PLACE = [
  hostname(),
  procText(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8')),
  procText(() => readlinkSync('/proc/self/ns/pid')),
].join('|');
/**
 * When this process started (Linux: clock ticks after boot, from /proc/self/stat; '' elsewhere),
 * shared by all its threads: with the pid, it tells another thread of this process (live) from an
 * earlier process that had the same pid (containers reuse small pids across restarts).
 */
export const CLAIM_PROCESS_STARTED = procText(
  () => readFileSync('/proc/self/stat', 'utf8').split(') ')[1]?.split(' ')[19] ?? '',
);
// Tells this thread's claims (its module copy) from every other thread's and process's.
const PROCESS_TOKEN = randomUUID();
// The claim files this process holds, by path, with the id of the claim.
const held = new Map<string, string>();
// Claiming and releasing one path run one at a time in this process, so its own holders never race.
const queues = new Map<string, Promise<unknown>>();
let temporaryCount = 0;

interface ClaimRecord {
  place: string;
  pid: number;
  /** The holder's process start (see CLAIM_PROCESS_STARTED). */
  started: string;
  token: string;
  /** Unique per claim: a holder only ever refreshes or removes its own. */
  id: string;
  /** The holder's last refresh, in ms since the epoch (wall-clock time, compared across machines). */
  at: number;
}

/** A claim held: `release()` removes it. */
export interface Claim {
  release(): Promise<void>;
}

/** Runs `task` after every earlier task on `path` in this process has settled. */
function serially<T>(path: string, task: () => Promise<T>): Promise<T> {
  const run = (queues.get(path) ?? Promise.resolve()).then(task, task);
  const tail = run.then(
    () => undefined,
    () => undefined,
  );
  queues.set(path, tail);
  void tail.then(() => {
    if (queues.get(path) === tail) queues.delete(path);
  });
  return run;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function isRecord(value: unknown): value is ClaimRecord {
  const record = value as Partial<ClaimRecord> | null;
  return (
    typeof record === 'object' &&
    record !== null &&
    typeof record.place === 'string' &&
    // kill(0) or kill(-1) would probe a whole process group: such a pid names no holder.
    Number.isSafeInteger(record.pid) &&
    (record.pid as number) > 0 &&
    typeof record.started === 'string' &&
    typeof record.token === 'string' &&
    typeof record.id === 'string' &&
    typeof record.at === 'number'
  );
}

function parse(text: string): ClaimRecord | undefined {
  try {
    const record: unknown = JSON.parse(text);
    return isRecord(record) ? record : undefined;
  } catch {
    return undefined;
  }
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Whether anything is at `path` (a failed `stat` of any kind counts as no). */
export async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * Writes `text` to a fresh temporary file beside `path` and hands it to `place`, which puts it at
 * `path` in one step: a claim file is never seen empty or half written.
 */
async function whole(
  path: string,
  text: string,
  place: (temporary: string) => Promise<void>,
): Promise<void> {
  temporaryCount += 1;
  const temporary = `${path}.${PROCESS_TOKEN}-${temporaryCount}${CLAIM_TEMP_SUFFIX}`;
  try {
    await writeFile(temporary, text, { mode: 0o600, flag: 'wx' });
    await place(temporary);
  } finally {
    await rm(temporary, { force: true });
  }
}

/** Whether a claim record stands for a live holder. */
function live(path: string, record: ClaimRecord | undefined): boolean {
  // Damaged (claims are written whole, so not a claim being written): not live.
  if (record === undefined) return false;
  // This process's own: live exactly while it holds that claim.
  if (record.token === PROCESS_TOKEN) return held.get(path) === record.id;
  // Refreshed too long ago, or stamped far ahead (a holder whose clock is off by more than the time
  // to live, or a damaged file): either way it cannot be trusted to ever turn stale on its own.
  if (Math.abs(Date.now() - record.at) > CLAIM_TTL_MS) return false;
  if (record.place !== CLAIM_PLACE) return true;
  // Same pid: another thread of this process (live), unless the process start tells it was an
  // earlier process. Without a start time to compare, the time to live decides.
  if (record.pid === process.pid)
    return CLAIM_PROCESS_STARTED === '' || record.started === CLAIM_PROCESS_STARTED;
  return alive(record.pid);
}

/**
 * Whether a file in a spool directory is debris of claims, safe to remove: a temporary claim file
 * (its writer died, or it is mid-claim and simply tries again), or a claim on a spool that is gone.
 * `spooled` lists the directory.
 */
export function isClaimDebris(name: string, spooled: ReadonlySet<string>): boolean {
  if (name.endsWith(CLAIM_TEMP_SUFFIX)) return true;
  return name.endsWith('.claim') && !spooled.has(name.slice(0, -'.claim'.length));
}

/**
 * Claims the spooled job at `spoolPath`; resolves `undefined` while another live worker holds it.
 * A stale claim is taken over. Rejects only on a file-system error (no space, no permission).
 */
export function claimSpool(spoolPath: string): Promise<Claim | undefined> {
  // One file, one key: `dir//job.eml` and `dir/job.eml` must not make two holders in a process.
  const path = `${resolve(spoolPath)}.claim`;
  return serially(path, () => claimOnce(path));
}

async function claimOnce(path: string): Promise<Claim | undefined> {
  const id = randomUUID();
  const record = (): string =>
    JSON.stringify({
      place: CLAIM_PLACE,
      pid: process.pid,
      started: CLAIM_PROCESS_STARTED,
      token: PROCESS_TOKEN,
      id,
      at: Date.now(),
    });
  for (let attempt = 0; attempt < 5; attempt += 1) {
    try {
      // link() fails with EEXIST when a claim is there: an exclusive create, with its content.
      await whole(path, record(), (temporary) => link(temporary, path));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        // No spool directory, so no spool: nothing to guard; the caller's own read reports it.
        if (!(await exists(dirname(path)))) return { release: () => Promise.resolve() };
        // Our temporary file was removed under us (a start-up clean-up elsewhere): try again.
        continue;
      }
      if (code !== 'EEXIST') throw error;
      const text = await readText(path);
      // Released meanwhile: try again, removing nothing (a new claim may be there by now).
      if (text === undefined) continue;
      if (live(path, parse(text))) return undefined;
      // Stale: remove it only if it is still the claim judged stale, never one made since.
      if ((await readText(path)) === text) await rm(path, { force: true });
      continue;
    }
    held.set(path, id);
    return hold(path, id, record);
  }
  // Lost every race: someone else holds it now, or will in a moment.
  return undefined;
}

/** Whether the claim file at `path` is the claim `id`. */
async function isOwn(path: string, id: string): Promise<boolean> {
  const text = await readText(path).catch(() => undefined);
  return text !== undefined && parse(text)?.id === id;
}

function hold(path: string, id: string, record: () => string): Claim {
  // Refreshes run one at a time, and release waits for the one under way, so a refresh never
  // puts back a claim that was just released.
  let refreshing: Promise<void> = Promise.resolve();
  const refresh = setInterval(() => {
    refreshing = refreshing.then(async () => {
      try {
        // Taken over (this process looked dead to another): stop; the sender finds out at release.
        if (await isOwn(path, id))
          await whole(path, record(), (temporary) => rename(temporary, path));
      } catch {
        // Out of space or the like: the next refresh tries again; the time to live is three of them.
      }
    });
  }, REFRESH_MS);
  refresh.unref();
  return {
    release: () =>
      serially(path, async () => {
        clearInterval(refresh);
        await refreshing;
        if (held.get(path) === id) held.delete(path);
        // Never removes a claim another worker took over meanwhile.
        if (await isOwn(path, id)) await rm(path, { force: true });
      }),
  };
}

/**
 * Claims the job, waiting while another live worker holds it (up to `waitMs`). Resolves with the
 * claim and whether it had to wait, or `undefined` when the wait ran out.
 */
export async function claimSpoolWaiting(
  spoolPath: string,
  waitMs: number,
  pollMs = 50,
): Promise<{ claim: Claim; waited: boolean } | undefined> {
  const deadline = Date.now() + waitMs;
  let waited = false;
  for (;;) {
    const claim = await claimSpool(spoolPath);
    if (claim !== undefined) return { claim, waited };
    if (Date.now() >= deadline) return undefined;
    waited = true;
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
