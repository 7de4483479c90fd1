// Claims on spooled jobs. A worker that delivers or bounces a job first creates a claim file beside
// its spool, exclusively (written whole to a temporary file, then link()ed in place, which fails when
// a claim exists), so two workers in any processes sharing the spool directory never act on one job
// at once: a queue that lost a lease and handed the job out again, or dead-lettered it while the
// first worker was still sending, cannot make a duplicate send or a bounce for mail that was
// delivered. A claim whose holder died (same host: its pid is gone) or stopped refreshing it (any
// host: refreshed over the time to live ago) is stale and taken over. Hosts sharing a spool need
// clocks within the time to live of each other. One race is left: two workers taking over the same
// stale claim at the same instant can, rarely, both proceed; delivery stays at least once.
import { randomUUID } from 'node:crypto';
import { link, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';

/** A claim older than this, by its holder's last refresh, is stale. */
export const CLAIM_TTL_MS = 60_000;
/** A holder refreshes its claim this often. */
const REFRESH_MS = CLAIM_TTL_MS / 3;
/** The suffix of the temporary file a claim is written to before it is linked in place. */
export const CLAIM_TEMP_SUFFIX = '.claimtmp';

// Tells this process's claims from those of an earlier process that had the same pid (containers
// reuse small pids across restarts).
const PROCESS_TOKEN = randomUUID();
const HOST = hostname();
// The claim files this process holds.
const held = new Set<string>();
let temporaryCount = 0;

interface ClaimRecord {
  host: string;
  pid: number;
  token: string;
  /** The holder's last refresh, in ms since the epoch (wall-clock time, compared across hosts). */
  at: number;
}

/** A claim held: `release()` removes it. */
export interface Claim {
  release(): Promise<void>;
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
    typeof record.host === 'string' &&
    // kill(0) or kill(-1) would probe a whole process group: such a pid names no holder.
    Number.isSafeInteger(record.pid) &&
    (record.pid as number) > 0 &&
    typeof record.token === 'string' &&
    typeof record.at === 'number'
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
  await writeFile(temporary, text, { mode: 0o600, flag: 'wx' });
  try {
    await place(temporary);
  } finally {
    await rm(temporary, { force: true });
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
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

/** Whether the claim file at `path` is this process's own. */
async function ours(path: string): Promise<boolean> {
  try {
    const record: unknown = JSON.parse(await readFile(path, 'utf8'));
    return isRecord(record) && record.token === PROCESS_TOKEN && record.pid === process.pid;
  } catch {
    return false;
  }
}

/** Refreshes a claim this process holds, unless another worker took it over meanwhile. */
async function renew(path: string, text: string): Promise<void> {
  if (!(await ours(path))) {
    held.delete(path);
    return;
  }
  await whole(path, text, (temporary) => rename(temporary, path));
}

/** Whether the claim file at `path` still stands for a live holder. */
async function live(path: string): Promise<boolean> {
  let record: unknown;
  try {
    record = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    // Released meanwhile (ENOENT), or damaged (claims are written whole): not live.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || error instanceof SyntaxError)
      return false;
    throw error;
  }
  if (!isRecord(record)) return false;
  // Refreshed too long ago, or stamped far ahead (a holder whose clock is off by more than the time
  // to live, or a damaged file): either way it cannot be trusted to ever turn stale on its own.
  if (Math.abs(Date.now() - record.at) > CLAIM_TTL_MS) return false;
  if (record.host !== HOST) return true;
  if (record.token === PROCESS_TOKEN) return held.has(path);
  if (record.pid === process.pid) return false;
  return alive(record.pid);
}

/**
 * Claims the spooled job at `spoolPath`; resolves `undefined` while another live worker holds it.
 * A stale claim is taken over.
 */
export async function claimSpool(spoolPath: string): Promise<Claim | undefined> {
  const path = `${spoolPath}.claim`;
  const record = (): string =>
    JSON.stringify({ host: HOST, pid: process.pid, token: PROCESS_TOKEN, at: Date.now() });
  for (let attempt = 0; attempt < 3; attempt += 1) {
    let created = false;
    try {
      // link() fails with EEXIST when a claim is there: an exclusive create, with its content.
      await whole(path, record(), (temporary) => link(temporary, path));
      created = true;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        // No spool directory, so no spool: nothing to guard; the caller's own read reports it.
        if (!(await exists(dirname(path)))) return { release: () => Promise.resolve() };
        // Our temporary file was removed under us (a start-up clean-up elsewhere): try again.
        continue;
      }
      if (code !== 'EEXIST') throw error;
    }
    if (!created) {
      if (await live(path)) return undefined;
      await rm(path, { force: true });
      continue;
    }
    held.add(path);
    // Refreshes run one at a time, and release waits for the one under way, so a refresh never
    // puts back a claim that was just released.
    let refreshing: Promise<void> = Promise.resolve();
    const refresh = setInterval(() => {
      refreshing = refreshing.then(() => renew(path, record()).catch(() => undefined));
    }, REFRESH_MS);
    refresh.unref();
    return {
      release: async () => {
        clearInterval(refresh);
        await refreshing;
        held.delete(path);
        // Never removes a claim another worker took over meanwhile.
        if (await ours(path)) await rm(path, { force: true });
      },
    };
  }
  // Lost every race for a stale claim: someone else took it over.
  return undefined;
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
