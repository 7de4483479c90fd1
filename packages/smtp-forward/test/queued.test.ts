import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLAIM_PLACE } from '../src/claim.js';
import { markSettled } from '../src/settled.js';
import { LocalDeliveryQueue, SmtpForwarder, staticResolver } from '../src/index.js';
import type { DeliveryQueue, QueuedDelivery } from '../src/index.js';
import { RawClient, startRelay } from './helpers.js';
import type { TestRelay } from './helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** The files in a spool folder, without the marks of settled jobs (its `settled` folder). */
function spoolFiles(dir: string): string[] {
  return readdirSync(dir).filter((name) => name !== 'settled');
}

function spoolDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'postern-spool-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function relay(behaviour?: Parameters<typeof startRelay>[0]): Promise<TestRelay> {
  const started = await startRelay(behaviour);
  cleanups.push(() => started.close());
  return started;
}

async function sendOne(
  port: number,
  subject: string,
  sender = 'sender@origin.test',
): Promise<string> {
  const client = await RawClient.open(port);
  await client.send('EHLO mx.origin.test\r\n');
  await client.send(`MAIL FROM:<${sender}>\r\n`);
  await client.send('RCPT TO:<alice@fwd.test>\r\n');
  await client.send('DATA\r\n');
  const reply = await client.send(`Subject: ${subject}\r\n\r\nbody of ${subject}\r\n.\r\n`);
  client.close();
  return reply;
}

async function waitFor(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 20));
}

function queued(relayPort: number, queue: DeliveryQueue, dir: string): SmtpForwarder {
  const forwarder = new SmtpForwarder({
    domain: 'fwd.test',
    resolver: staticResolver({ 'alice@fwd.test': 'alice@dest.test' }),
    transport: {
      relays: [{ host: '127.0.0.1', port: relayPort }],
      connectionTimeoutMs: 1000,
      greetingTimeoutMs: 1000,
    },
    delivery: { mode: 'queued', queue, spoolDir: dir },
    srs: { secrets: ['queued-secret-0123456789'] },
    fromRewrite: 'never',
  });
  cleanups.push(() => forwarder.close({ timeoutMs: 100 }));
  return forwarder;
}

/** A queue that keeps every job it is given and never delivers one. */
function keeping(): { jobs: QueuedDelivery[]; keep: DeliveryQueue } {
  const jobs: QueuedDelivery[] = [];
  return {
    jobs,
    keep: {
      add: (job) => {
        jobs.push(job);
        return Promise.resolve();
      },
    },
  };
}

describe('queued delivery', () => {
  it('answers 250 after spooling, retries a deferral, and removes the spool once delivered', async () => {
    let calls = 0;
    const flaky = await relay({ data: () => (++calls === 1 ? 451 : undefined) });
    const dir = spoolDir();
    const queue = new LocalDeliveryQueue({ backoffMs: () => 1 });
    cleanups.push(() => queue.close());
    const forwarder = queued(flaky.port, queue, dir);
    queue.process((job, info) => forwarder.deliverQueued(job, info));
    const { port } = await forwarder.listen({ port: 0, host: '127.0.0.1' });
    expect(await sendOne(port, 'retry-me')).toMatch(/^250 2\.0\.0 Queued as /);
    await queue.onIdle();
    expect(flaky.messages).toHaveLength(1);
    expect(flaky.messages[0]!.data.toString()).toContain('body of retry-me');
    expect(forwarder.stats().deferred).toBe(1);
    expect(spoolFiles(dir)).toEqual([]);
  });

  it('bounces a permanent failure to the original sender with a DSN that hides the destination', async () => {
    const refusing = await relay({
      rcpt: (address) => (address === 'alice@dest.test' ? 550 : undefined),
    });
    const dir = spoolDir();
    const queue = new LocalDeliveryQueue();
    cleanups.push(() => queue.close());
    const forwarder = queued(refusing.port, queue, dir);
    queue.process((job, info) => forwarder.deliverQueued(job, info));
    const { port } = await forwarder.listen({ port: 0, host: '127.0.0.1' });
    expect(await sendOne(port, 'doomed')).toMatch(/^250/);
    await queue.onIdle();
    expect(refusing.messages).toHaveLength(1);
    const dsn = refusing.messages[0]!;
    expect(dsn.from).toBe('');
    expect(dsn.to).toEqual(['sender@origin.test']);
    const text = dsn.data.toString();
    expect(text).toContain('multipart/report; report-type=delivery-status');
    expect(text).toContain('Final-Recipient: rfc822; alice@fwd.test');
    expect(text).toContain('Subject: doomed');
    expect(text).not.toContain('alice@dest.test');
    expect(forwarder.stats().bounced).toBe(1);
    expect(spoolFiles(dir)).toEqual([]);
  });

  it('bounces after the final attempt when the failure stays temporary, and never bounces a bounce', async () => {
    const deferring = await relay({
      rcpt: (address) => (address === 'alice@dest.test' ? 451 : undefined),
    });
    const dir = spoolDir();
    const queue = new LocalDeliveryQueue({ maxAttempts: 2, backoffMs: () => 1 });
    cleanups.push(() => queue.close());
    const forwarder = queued(deferring.port, queue, dir);
    queue.process((job, info) => forwarder.deliverQueued(job, info));
    const { port } = await forwarder.listen({ port: 0, host: '127.0.0.1' });
    expect(await sendOne(port, 'slow-death')).toMatch(/^250/);
    expect(await sendOne(port, 'a-bounce', '')).toMatch(/^250/);
    await queue.onIdle();
    expect(deferring.messages.map((m) => m.to)).toEqual([['sender@origin.test']]);
    expect(deferring.messages[0]!.data.toString()).toContain('Status: 4.4.7');
    expect(spoolFiles(dir)).toEqual([]);
  });

  it('keeps the spool and retries when the DSN of a refused message is not accepted', async () => {
    let takeDsn = false;
    const relayed = await relay({
      rcpt: (address) =>
        address === 'alice@dest.test'
          ? 550
          : address === 'sender@origin.test' && !takeDsn
            ? 451
            : undefined,
    });
    const dir = spoolDir();
    const { jobs, keep } = keeping();
    const forwarder = queued(relayed.port, keep, dir);
    const bounced: string[] = [];
    forwarder.onBounced((event) => bounced.push(event.messageId));
    const { port } = await forwarder.listen({ port: 0, host: '127.0.0.1' });
    expect(await sendOne(port, 'dsn-deferred')).toMatch(/^250/);
    const job = jobs[0]!;
    await expect(forwarder.deliverQueued(job)).rejects.toMatchObject({
      code: 'DELIVERY_FAILED',
      temporary: true,
      responseCode: 451,
    });
    // Nothing is lost: the spool stays, and nothing counts as bounced before the sender heard.
    expect(existsSync(job.path)).toBe(true);
    expect(bounced).toEqual([]);
    expect(forwarder.stats().bounced).toBe(0);
    takeDsn = true;
    await forwarder.deliverQueued(job, { attempt: 2, finalAttempt: false });
    expect(relayed.messages.map((m) => m.to)).toEqual([['sender@origin.test']]);
    expect(relayed.messages[0]!.data.toString()).toContain('Status: 5.0.0');
    expect(bounced).toEqual([job.messageId]);
    expect(spoolFiles(dir)).toEqual([]);
  });

  it('bounces a dead-lettered job with bounceQueued, and says why when it cannot', async () => {
    const sink = await relay({
      rcpt: (address) => (address === 'refused@origin.test' ? 550 : undefined),
    });
    const dir = spoolDir();
    // Each job is then given up on by hand.
    const { jobs, keep } = keeping();
    const forwarder = queued(sink.port, keep, dir);
    const bounced: string[] = [];
    forwarder.onBounced((event) => bounced.push(event.reason));
    const { port } = await forwarder.listen({ port: 0, host: '127.0.0.1' });
    expect(await sendOne(port, 'given-up')).toMatch(/^250/);
    expect(await sendOne(port, 'refused', 'refused@origin.test')).toMatch(/^250/);
    expect(await sendOne(port, 'a-bounce', '')).toMatch(/^250/);
    const [givenUp, refused, nullSender] = jobs;

    expect(await forwarder.bounceQueued(givenUp!, 'lease lost for alice@dest.test')).toBe(true);
    const dsn = sink.messages.find((m) => m.to.includes('sender@origin.test'))!;
    expect(dsn.from).toBe('');
    const text = dsn.data.toString();
    expect(text).toContain('Final-Recipient: rfc822; alice@fwd.test');
    expect(text).toContain('Status: 4.4.7');
    expect(text).toContain('Subject: given-up');
    expect(text).toContain('lease lost for <redacted>');
    expect(text).not.toContain('alice@dest.test');
    expect(bounced).toEqual(['lease lost for alice@dest.test']);
    expect(forwarder.stats().bounced).toBe(1);
    expect(spoolFiles(dir).some((name) => name.startsWith(givenUp!.messageId))).toBe(false);

    // A bounce is never bounced: nothing sent, the spool stays.
    expect(await forwarder.bounceQueued(nullSender!, 'gave up')).toBe(false);
    // No relay takes the DSN: a typed error, the spool stays for an operator.
    await expect(forwarder.bounceQueued(refused!, 'gave up')).rejects.toMatchObject({
      code: 'DELIVERY_FAILED',
      responseCode: 550,
    });
    const left = spoolFiles(dir);
    expect(left.some((name) => name.startsWith(nullSender!.messageId))).toBe(true);
    expect(left.some((name) => name.startsWith(refused!.messageId))).toBe(true);
    expect(sink.messages.filter((m) => m.from === '')).toHaveLength(1);

    await expect(
      forwarder.bounceQueued({ ...givenUp!, path: join(dir, 'gone.eml') }, 'gave up'),
    ).rejects.toMatchObject({
      code: 'SPOOL_UNREADABLE',
      message: expect.stringContaining('ENOENT') as string,
    });
    expect(forwarder.stats().bounced).toBe(1);
  });

  it('drops a job nothing can be done for with dropQueued, so pendingSpool never returns it again', async () => {
    const sink = await relay({
      rcpt: (address) => (address === 'refused@origin.test' ? 550 : undefined),
    });
    const dir = spoolDir();
    const { jobs, keep } = keeping();
    const forwarder = queued(sink.port, keep, dir);
    const dropped: string[] = [];
    forwarder.onDropped((event) => dropped.push(`${event.messageId} ${event.reason}`));
    const before = Date.now();
    const { port } = await forwarder.listen({ port: 0, host: '127.0.0.1' });
    expect(await sendOne(port, 'a-bounce', '')).toMatch(/^250/);
    expect(await sendOne(port, 'refused', 'refused@origin.test')).toMatch(/^250/);
    expect(await sendOne(port, 'kept')).toMatch(/^250/);
    const [nullSender, refused, kept] = jobs;
    // Each job carries when it was spooled, so a queue that adds it again keeps its age.
    for (const job of jobs) {
      expect(job.queuedAt).toBeGreaterThanOrEqual(before);
      expect(job.queuedAt).toBeLessThanOrEqual(Date.now());
    }
    const byId = (a: QueuedDelivery, b: QueuedDelivery): number =>
      a.messageId.localeCompare(b.messageId);
    expect(
      (await forwarder.pendingSpool()).sort(byId).map((job) => [job.messageId, job.queuedAt]),
    ).toEqual([...jobs].sort(byId).map((job) => [job.messageId, job.queuedAt]));

    expect(await forwarder.bounceQueued(nullSender!, 'gave up')).toBe(false);
    await expect(forwarder.bounceQueued(refused!, 'gave up')).rejects.toMatchObject({
      code: 'DELIVERY_FAILED',
      temporary: false,
    });
    expect(await forwarder.dropQueued(nullSender!, 'null sender')).toBe(true);
    expect(await forwarder.dropQueued(refused!, 'DSN refused')).toBe(true);
    expect(dropped).toEqual([
      `${nullSender!.messageId} null sender`,
      `${refused!.messageId} DSN refused`,
    ]);
    expect(forwarder.stats().dropped).toBe(2);
    // Only the job still to deliver is left, and a copy of a dropped job sends nothing.
    expect((await forwarder.pendingSpool()).map((job) => job.messageId)).toEqual([kept!.messageId]);
    await forwarder.deliverQueued(refused!);
    expect(await forwarder.dropQueued(refused!, 'again')).toBe(false);
    await expect(forwarder.bounceQueued(nullSender!, 'again')).rejects.toMatchObject({
      code: 'ALREADY_SETTLED',
    });
    expect(sink.messages).toHaveLength(0);
    expect(forwarder.stats().dropped).toBe(2);
    await expect(forwarder.dropQueued(kept!, 'x', { waitMs: -1 })).rejects.toMatchObject({
      code: 'INVALID_OPTIONS',
    });
    expect(existsSync(kept!.path)).toBe(true);
  });

  it('answers 451 and keeps no spool file when the queue refuses the job', async () => {
    const sink = await relay();
    const dir = spoolDir();
    const forwarder = queued(
      sink.port,
      { add: () => Promise.reject(new Error('queue down')) },
      dir,
    );
    const { port } = await forwarder.listen({ port: 0, host: '127.0.0.1' });
    expect(await sendOne(port, 'no-queue')).toMatch(/^451 4\.3\.0/);
    expect(spoolFiles(dir)).toEqual([]);
  });

  it('delivers every message that got 250 after the forwarder is killed with SIGKILL and restarted', async () => {
    const dir = spoolDir();
    // A relay that defers everything (not a free port, which another test could bind meanwhile).
    const deferring = await relay({ rcpt: () => 451 });
    const children: ChildProcess[] = [];
    cleanups.push(async () => {
      for (const child of children) {
        child.stdout?.destroy();
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise((resolve) => child.once('exit', resolve));
          child.kill('SIGKILL');
          await exited;
        }
      }
    });
    const startChild = async (
      relayPort: number,
    ): Promise<{ child: ChildProcess; port: number }> => {
      // node itself (not the tsx CLI, which forks a grandchild that SIGKILL would not reach).
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', join(import.meta.dirname, 'fixtures/queued-forwarder.ts')],
        {
          env: { ...process.env, RELAY_PORT: String(relayPort), SPOOL_DIR: dir },
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      children.push(child);
      const line = await new Promise<string>((resolve, reject) => {
        let buffer = '';
        child.stdout.on('data', (data: Buffer) => {
          buffer += data.toString();
          if (buffer.includes('\n')) resolve(buffer.split('\n')[0]!);
        });
        child.once('exit', (code) => reject(new Error(`child exited with ${code}`)));
      });
      return { child, port: (JSON.parse(line) as { port: number }).port };
    };
    const first = await startChild(deferring.port);
    const acknowledged: string[] = [];
    for (let i = 0; i < 15; i += 1) {
      const subject = `crash-${i}`;
      if ((await sendOne(first.port, subject)).startsWith('250')) acknowledged.push(subject);
    }
    expect(acknowledged).toHaveLength(15);
    first.child.kill('SIGKILL');
    await new Promise((resolve) => first.child.once('exit', resolve));
    const sink = await relay();
    await startChild(sink.port);
    const delivered = (): Set<string> =>
      new Set(sink.messages.map((m) => /Subject: (\S+)/.exec(m.data.toString())?.[1] ?? ''));
    await waitFor(() => acknowledged.every((subject) => delivered().has(subject)));
    expect(acknowledged.filter((subject) => !delivered().has(subject))).toEqual([]);
    // Claims the killed process left behind were taken over, and every spool was removed.
    await waitFor(() => spoolFiles(dir).length === 0);
  }, 60_000);
});

describe('claims on spooled jobs', () => {
  /** Spools one message per subject through a queue that never delivers; returns the jobs. */
  async function spooled(
    relayPort: number,
    subjects: string[],
  ): Promise<{ dir: string; jobs: QueuedDelivery[] }> {
    const dir = spoolDir();
    const { jobs, keep } = keeping();
    const intake = queued(relayPort, keep, dir);
    const { port } = await intake.listen({ port: 0, host: '127.0.0.1' });
    for (const subject of subjects) expect(await sendOne(port, subject)).toMatch(/^250/);
    return { dir, jobs };
  }

  /** A second worker: another forwarder instance delivering from the same spool directory. */
  function worker(relayPort: number, dir: string): SmtpForwarder {
    return queued(relayPort, { add: () => Promise.resolve() }, dir);
  }

  it('never sends one job twice at once: a second worker defers while the first is sending', async () => {
    const slow = await relay({ delayMs: 400 });
    const { dir, jobs } = await spooled(slow.port, ['once']);
    const job = jobs[0]!;
    const first = worker(slow.port, dir).deliverQueued(job);
    await waitFor(() => existsSync(`${job.path}.claim`));
    await expect(worker(slow.port, dir).deliverQueued(job)).rejects.toMatchObject({
      code: 'DELIVERY_FAILED',
      temporary: true,
      message: expect.stringContaining('another worker') as string,
    });
    await first;
    expect(slow.messages).toHaveLength(1);
    expect(spoolFiles(dir)).toEqual([]);
  });

  it('does not bounce a job that the worker holding it delivered', async () => {
    const slow = await relay({ delayMs: 400 });
    const { dir, jobs } = await spooled(slow.port, ['delivered-late']);
    const job = jobs[0]!;
    const holder = worker(slow.port, dir);
    const sending = holder.deliverQueued(job);
    await waitFor(() => existsSync(`${job.path}.claim`));
    // The queue dead-lettered the job (its lease ran out) while the holder was still sending.
    const reaper = worker(slow.port, dir);
    await expect(reaper.bounceQueued(job, 'lease lost')).rejects.toMatchObject({
      code: 'ALREADY_SETTLED',
    });
    await sending;
    expect(slow.messages.map((m) => m.from)).toEqual([expect.stringMatching(/^SRS0=/)]);
    expect(reaper.stats().bounced).toBe(0);
    expect(holder.stats().forwarded).toBe(1);
    expect(spoolFiles(dir)).toEqual([]);
  });

  it('bounces once the holder gave the job back undelivered', async () => {
    // Defers the forward (to the destination), takes the DSN (to the original sender).
    const deferring = await relay({
      rcpt: (address) => (address === 'alice@dest.test' ? 451 : undefined),
      rcptDelayMs: 300,
    });
    const { dir, jobs } = await spooled(deferring.port, ['never-delivered']);
    const job = jobs[0]!;
    const sending = worker(deferring.port, dir).deliverQueued(job);
    await waitFor(() => existsSync(`${job.path}.claim`));
    const bounced = worker(deferring.port, dir).bounceQueued(job, 'lease lost');
    await expect(sending).rejects.toMatchObject({ code: 'DELIVERY_FAILED', temporary: true });
    expect(await bounced).toBe(true);
    // Only the DSN reached the relay, after the holder had given the job back.
    expect(deferring.messages.map((m) => m.to)).toEqual([['sender@origin.test']]);
    expect(deferring.messages[0]!.data.toString()).toContain('Status: 4.4.7');
    expect(spoolFiles(dir)).toEqual([]);
  });

  it('never has two holders across processes claiming one spool again and again', async () => {
    const dir = spoolDir();
    const spool = join(dir, 'contested.eml');
    const log = join(dir, 'holders.log');
    writeFileSync(spool, 'Subject: x\r\n\r\nbody\r\n');
    writeFileSync(log, '');
    const workers = Array.from({ length: 4 }, () =>
      spawn(
        process.execPath,
        ['--import', 'tsx', join(import.meta.dirname, 'fixtures/claim-worker.ts')],
        {
          env: { ...process.env, SPOOL: spool, LOG: log, ROUNDS: '25' },
          stdio: 'inherit',
        },
      ),
    );
    const codes = await Promise.all(
      workers.map((worker) => new Promise((resolve) => worker.once('exit', resolve))),
    );
    expect(codes).toEqual([0, 0, 0, 0]);
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(4 * 25 * 2);
    // Each hold ends before the next begins: "+pid" and "-pid" strictly alternate.
    for (let index = 0; index < lines.length; index += 2) {
      expect(lines[index]!.startsWith('+')).toBe(true);
      expect(lines[index + 1]).toBe(`-${lines[index]!.slice(1)}`);
    }
    expect(spoolFiles(dir).sort()).toEqual(['contested.eml', 'holders.log']);
  }, 60_000);

  it('sends nothing for a job handed out again after it was settled, and says so for one never settled', async () => {
    const sink = await relay();
    const { dir, jobs } = await spooled(sink.port, ['settled-before', 'lost-before']);
    const [job, lost] = jobs;
    const forwarder = worker(sink.port, dir);
    const events: string[] = [];
    forwarder.onForwarded(() => events.push('forwarded'));
    forwarder.onBounced(() => events.push('bounced'));
    forwarder.onDeferred(() => events.push('deferred'));
    await forwarder.deliverQueued(job!);
    expect(events).toEqual(['forwarded']);
    expect(sink.messages).toHaveLength(1);
    // The queue lost the lease of the finished attempt, or pendingSpool added the job again at
    // start-up while the queue still held it: the copy finds the job settled and sends nothing.
    await forwarder.deliverQueued(job!, { attempt: 2, finalAttempt: true });
    await expect(forwarder.bounceQueued(job!, 'gave up')).rejects.toMatchObject({
      code: 'ALREADY_SETTLED',
    });
    expect(sink.messages).toHaveLength(1);
    expect(events).toEqual(['forwarded']);
    // A spool that went without being settled is lost, and the answer says so.
    rmSync(lost!.path);
    await expect(forwarder.deliverQueued(lost!)).rejects.toMatchObject({
      code: 'SPOOL_UNREADABLE',
      temporary: false,
    });
    expect(sink.messages).toHaveLength(1);
    expect(spoolFiles(dir)).toEqual([]);
    expect(readdirSync(join(dir, 'settled'))).toHaveLength(1);
  });

  it('sends once when its settled mark cannot be written, and nothing for a job marked but not yet removed', async () => {
    const sink = await relay();
    const { dir, jobs } = await spooled(sink.port, ['no-mark', 'marked', 'marked-bounce']);
    const [noMark, marked, markedBounce] = jobs;
    // A file where the marks' folder should be: writing the mark fails (as on a full disk).
    writeFileSync(join(dir, 'settled'), 'in the way');
    const forwarder = worker(sink.port, dir);
    await forwarder.deliverQueued(noMark!);
    expect(sink.messages).toHaveLength(1);
    expect(existsSync(noMark!.path)).toBe(false);
    rmSync(join(dir, 'settled'));
    // A crash came after the mark and before the spool went: the next run sends nothing.
    await markSettled(marked!.path);
    await markSettled(markedBounce!.path);
    await forwarder.deliverQueued(marked!);
    await expect(forwarder.bounceQueued(markedBounce!, 'gave up')).rejects.toMatchObject({
      code: 'ALREADY_SETTLED',
    });
    expect(sink.messages).toHaveLength(1);
    expect(spoolFiles(dir)).toEqual([]);
  });

  it('refuses, typed, to deliver a job whose delivery record is damaged', async () => {
    const sink = await relay();
    const { dir, jobs } = await spooled(sink.port, ['damaged-record']);
    const job = jobs[0]!;
    writeFileSync(`${job.path}.delivered`, '["alice@de');
    await expect(worker(sink.port, dir).deliverQueued(job)).rejects.toMatchObject({
      code: 'SPOOL_UNREADABLE',
      message: expect.stringContaining('damaged') as string,
    });
    expect(sink.messages).toHaveLength(0);
    expect(existsSync(job.path)).toBe(true);
  });

  it('clears claim debris at start-up, and keeps claims on spools that are still there', async () => {
    const sink = await relay();
    const { dir, jobs } = await spooled(sink.port, ['kept']);
    const job = jobs[0]!;
    const name = job.path.slice(dir.length + 1);
    writeFileSync(`${job.path}.claim`, '{}');
    writeFileSync(join(dir, 'gone.eml.claim'), '{}');
    writeFileSync(join(dir, `gone.eml.claim.token-1.claimtmp`), '{}');
    // Debris a crash left an hour ago goes; the same files fresh may be another process's work
    // in progress (pendingSpool runs at every start), and stay.
    const hourAgo = new Date(Date.now() - 3_600_000 - 60_000);
    for (const debris of [
      'gone.eml.delivered.tmp',
      'cut.eml.part',
      'orphan.eml',
      'gone.eml.delivered',
    ]) {
      writeFileSync(join(dir, debris), 'x');
      utimesSync(join(dir, debris), hourAgo, hourAgo);
    }
    writeFileSync(join(dir, 'writing.eml.part'), 'x');
    writeFileSync(join(dir, 'saving.eml.delivered.tmp'), 'x');
    const pending = await worker(sink.port, dir).pendingSpool();
    expect(pending.map((entry) => entry.messageId)).toEqual([job.messageId]);
    expect(spoolFiles(dir).sort()).toEqual(
      [
        name,
        `${name}.claim`,
        `${name}.json`,
        'saving.eml.delivered.tmp',
        'writing.eml.part',
      ].sort(),
    );
  });

  it('takes over a claim whose holder died, or that its holder stopped refreshing', async () => {
    const sink = await relay();
    const { dir, jobs } = await spooled(sink.port, ['dead-holder', 'old-claim']);
    const [deadHolder, oldClaim] = jobs;
    const finished = spawn(process.execPath, ['-e', '']);
    const deadPid = finished.pid!;
    await new Promise((resolve) => finished.once('exit', resolve));
    writeFileSync(
      `${deadHolder!.path}.claim`,
      JSON.stringify({
        place: CLAIM_PLACE,
        pid: deadPid,
        started: '',
        token: 'gone',
        id: 'gone',
        at: Date.now(),
      }),
    );
    writeFileSync(
      `${oldClaim!.path}.claim`,
      JSON.stringify({
        place: 'another-host',
        pid: 1,
        started: '',
        token: 'old',
        id: 'old',
        at: Date.now() - 61_000,
      }),
    );
    const forwarder = worker(sink.port, dir);
    await forwarder.deliverQueued(deadHolder!);
    await forwarder.deliverQueued(oldClaim!);
    expect(sink.messages).toHaveLength(2);
    expect(spoolFiles(dir)).toEqual([]);
  });

  it('waits for a live claim of another host no longer than waitMs, and checks waitMs', async () => {
    const sink = await relay();
    const { dir, jobs } = await spooled(sink.port, ['held-elsewhere']);
    const job = jobs[0]!;
    writeFileSync(
      `${job.path}.claim`,
      JSON.stringify({
        place: 'another-host',
        pid: 1,
        started: '',
        token: 'busy',
        id: 'busy',
        at: Date.now(),
      }),
    );
    const forwarder = worker(sink.port, dir);
    await expect(forwarder.deliverQueued(job)).rejects.toMatchObject({
      code: 'DELIVERY_FAILED',
      temporary: true,
    });
    await expect(forwarder.bounceQueued(job, 'gave up', { waitMs: 150 })).rejects.toMatchObject({
      code: 'DELIVERY_FAILED',
      temporary: true,
      message: expect.stringContaining('still being delivered') as string,
    });
    await expect(forwarder.bounceQueued(job, 'gave up', { waitMs: -1 })).rejects.toMatchObject({
      code: 'INVALID_OPTIONS',
    });
    expect(sink.messages).toHaveLength(0);
    // The other host's claim and the spool are untouched.
    expect(existsSync(`${job.path}.claim`)).toBe(true);
    expect(existsSync(job.path)).toBe(true);
  });
});
