import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  CLAIM_PLACE,
  CLAIM_PROCESS_STARTED,
  CLAIM_TEMP_SUFFIX,
  CLAIM_TTL_MS,
  claimSpool,
  claimSpoolWaiting,
  isClaimDebris,
} from './claim.js';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function spool(): string {
  const dir = mkdtempSync(join(tmpdir(), 'postern-claim-'));
  dirs.push(dir);
  const path = join(dir, 'job.eml');
  writeFileSync(path, 'Subject: x\r\n\r\nbody\r\n');
  return path;
}

describe('claimSpool', () => {
  it('lets one holder at a time claim a job, and the next one after release', async () => {
    const path = spool();
    const first = await claimSpool(path);
    expect(first).toBeDefined();
    expect(await claimSpool(path)).toBeUndefined();
    const record = JSON.parse(readFileSync(`${path}.claim`, 'utf8')) as Record<string, unknown>;
    expect(record).toMatchObject({ place: CLAIM_PLACE, pid: process.pid });
    await first!.release();
    // Only the spool is left: no claim, no temporary file.
    expect(readdirSync(join(path, '..'))).toEqual(['job.eml']);
    const second = await claimSpool(path);
    expect(second).toBeDefined();
    await second!.release();
  });

  it('gives a contested job to exactly one of many concurrent claimers', async () => {
    const path = spool();
    const claims = await Promise.all(Array.from({ length: 20 }, () => claimSpool(path)));
    expect(claims.filter((claim) => claim !== undefined)).toHaveLength(1);
    for (const claim of claims) await claim?.release();
  });

  it('never has two holders in one process while claims and releases interleave', async () => {
    const path = spool();
    let holding = 0;
    let most = 0;
    // 20 workers each take the claim 3 times, retrying until they get it.
    const worker = async (): Promise<void> => {
      for (let taken = 0; taken < 3;) {
        const claim = await claimSpool(path);
        if (claim === undefined) {
          await new Promise((resolve) => setImmediate(resolve));
          continue;
        }
        holding += 1;
        taken += 1;
        most = Math.max(most, holding);
        await new Promise((resolve) => setTimeout(resolve, 1));
        holding -= 1;
        await claim.release();
      }
    };
    await Promise.all(Array.from({ length: 20 }, worker));
    expect(most).toBe(1);
    expect(readdirSync(join(path, '..'))).toEqual(['job.eml']);
  });

  it('takes over a damaged claim and one that its holder stopped refreshing', async () => {
    const path = spool();
    writeFileSync(`${path}.claim`, '{"host":');
    const overDamaged = await claimSpool(path);
    expect(overDamaged).toBeDefined();
    await overDamaged!.release();
    writeFileSync(
      `${path}.claim`,
      JSON.stringify({
        place: 'elsewhere',
        pid: 1,
        started: '',
        token: 't',
        id: 't',
        at: Date.now() - CLAIM_TTL_MS - 1,
      }),
    );
    const overOld = await claimSpool(path);
    expect(overOld).toBeDefined();
    await overOld!.release();
  });

  it('takes over a claim stamped far in the future, or naming no real process', async () => {
    const path = spool();
    for (const record of [
      {
        place: 'elsewhere',
        pid: 1,
        started: '',
        token: 't',
        id: 't',
        at: Date.now() + CLAIM_TTL_MS + 1_000,
      },
      { place: CLAIM_PLACE, pid: 0, started: '', token: 't', id: 't', at: Date.now() },
      { place: CLAIM_PLACE, pid: -1, started: '', token: 't', id: 't', at: Date.now() },
    ]) {
      writeFileSync(`${path}.claim`, JSON.stringify(record));
      const claim = await claimSpool(path);
      expect(claim).toBeDefined();
      await claim!.release();
    }
  });

  it('treats a claim of an earlier process with our pid as stale, and of another thread as live', async () => {
    const path = spool();
    const record = (started: string): string =>
      JSON.stringify({
        place: CLAIM_PLACE,
        pid: process.pid,
        started,
        token: 'other',
        id: 'other',
        at: Date.now(),
      });
    writeFileSync(`${path}.claim`, record(`${CLAIM_PROCESS_STARTED}0`));
    const overEarlier = await claimSpool(path);
    expect(overEarlier).toBeDefined();
    await overEarlier!.release();
    // Same pid, same process start, another module copy: a worker thread of this very process.
    writeFileSync(`${path}.claim`, record(CLAIM_PROCESS_STARTED));
    expect(await claimSpool(path)).toBeUndefined();
  });

  it('keys a claim by the file, however its path is spelled', async () => {
    const path = spool();
    const claim = await claimSpool(path);
    expect(await claimSpool(path.replace('/job.eml', '//job.eml'))).toBeUndefined();
    expect(await claimSpool(join(path, '..', '.', 'job.eml'))).toBeUndefined();
    await claim!.release();
  });

  it('refreshes a held claim, so it never turns stale while its holder lives', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] });
    try {
      const path = spool();
      vi.setSystemTime(1_000_000);
      const claim = await claimSpool(path);
      const at = (): number =>
        (JSON.parse(readFileSync(`${path}.claim`, 'utf8')) as { at: number }).at;
      expect(at()).toBe(1_000_000);
      // Each refresh comes a third of the time to live after the last one.
      vi.advanceTimersByTime(CLAIM_TTL_MS / 3);
      await vi.waitFor(() => expect(at()).toBeGreaterThanOrEqual(1_000_000 + CLAIM_TTL_MS / 3));
      // Taken over by another worker meanwhile: the next refresh leaves that claim alone.
      const theirs = {
        place: 'elsewhere',
        pid: 1,
        started: '',
        token: 'theirs',
        id: 'theirs',
        at: Date.now(),
      };
      writeFileSync(`${path}.claim`, JSON.stringify(theirs));
      vi.advanceTimersByTime(CLAIM_TTL_MS / 3);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(JSON.parse(readFileSync(`${path}.claim`, 'utf8'))).toEqual(theirs);
      // Nor does the release: the claim stays theirs.
      await claim!.release();
      expect(JSON.parse(readFileSync(`${path}.claim`, 'utf8'))).toEqual(theirs);
    } finally {
      vi.useRealTimers();
    }
  });

  it('claims nothing, and fails nothing, when the spool directory is gone', async () => {
    const claim = await claimSpool(join(tmpdir(), 'postern-no-such-dir', 'job.eml'));
    expect(claim).toBeDefined();
    await claim!.release();
  });
});

describe('isClaimDebris', () => {
  it('names temporary claim files and claims on gone spools, never a claim on a spool', () => {
    const spooled = new Set(['a.eml', 'a.eml.claim', 'b.eml.claim']);
    expect(isClaimDebris('a.eml.claim', spooled)).toBe(false);
    expect(isClaimDebris('b.eml.claim', spooled)).toBe(true);
    expect(isClaimDebris(`a.eml.claim.x-1${CLAIM_TEMP_SUFFIX}`, spooled)).toBe(true);
    expect(isClaimDebris('a.eml', spooled)).toBe(false);
    expect(isClaimDebris('a.eml.json', spooled)).toBe(false);
  });

  it('lets a claimer whose temporary file was removed under it try again', async () => {
    const path = spool();
    const dir = join(path, '..');
    // Another process's start-up clean-up removes every temporary claim file it sees, at any moment.
    const sweeper = setInterval(() => {
      for (const name of readdirSync(dir))
        if (name.endsWith(CLAIM_TEMP_SUFFIX)) rmSync(join(dir, name), { force: true });
    }, 0);
    try {
      const claims = await Promise.all(Array.from({ length: 50 }, () => claimSpool(path)));
      // Never two holders, and no error: a claimer that lost its temporary file tried again.
      expect(claims.filter((claim) => claim !== undefined).length).toBeLessThanOrEqual(1);
      for (const claim of claims) await claim?.release();
    } finally {
      clearInterval(sweeper);
    }
    const claim = await claimSpool(path);
    expect(claim).toBeDefined();
    await claim!.release();
  });
});

describe('claimSpoolWaiting', () => {
  it('waits for the holder to release, and says it waited', async () => {
    const path = spool();
    const holder = await claimSpool(path);
    setTimeout(() => void holder!.release(), 100);
    const claimed = await claimSpoolWaiting(path, 5_000, 10);
    expect(claimed?.waited).toBe(true);
    await claimed!.claim.release();
    const free = await claimSpoolWaiting(path, 5_000, 10);
    expect(free?.waited).toBe(false);
    await free!.claim.release();
  });

  it('gives up after waitMs while the holder keeps the claim', async () => {
    const path = spool();
    const holder = await claimSpool(path);
    const started = Date.now();
    expect(await claimSpoolWaiting(path, 100, 10)).toBeUndefined();
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    await holder!.release();
  });
});
