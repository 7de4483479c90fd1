import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Srs } from '../src/index.js';
import { freePort } from './helpers.js';

// Debian's postsrsd (installed by .ci/run), running here with the same secret as ours: the
// addresses each side writes must be accepted by the other, and forged ones by neither.
const POSTSRSD = '/usr/sbin/postsrsd';
const SECRET = 'interop-secret-0123456789';
const DOMAIN = 'fwd.test';

let child: ChildProcess;
let dir: string;
let forwardPort: number;
let reversePort: number;

/** One lookup in postsrsd's Postfix tcp_table protocol: `get <key>` → `200 <value>` or an error. */
function lookup(port: number, key: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () =>
      socket.write(`get ${encodeURIComponent(key)}\n`),
    );
    let reply = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      reply += chunk;
      if (reply.endsWith('\n')) {
        socket.end();
        resolve(decodeURIComponent(reply.trim()));
      }
    });
    socket.on('error', reject);
  });
}

async function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'postern-postsrsd-'));
  writeFileSync(join(dir, 'secret'), `${SECRET}\n`, { mode: 0o600 });
  forwardPort = await freePort();
  reversePort = await freePort();
  child = spawn(
    POSTSRSD,
    [
      `-s${join(dir, 'secret')}`,
      `-d${DOMAIN}`,
      '-l127.0.0.1',
      '-4',
      `-f${forwardPort}`,
      `-r${reversePort}`,
    ],
    { stdio: 'ignore' },
  );
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', (error) =>
      reject(new Error(`postsrsd could not start (install Debian's postsrsd): ${error.message}`)),
    );
  });
  await spawned;
  for (let attempt = 0; attempt < 100; attempt += 1) {
    if ((await answers(forwardPort)) && (await answers(reversePort))) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('postsrsd did not listen within 2 s');
});

afterAll(() => {
  child?.kill('SIGKILL');
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('SRS interoperability with a running postsrsd (same secret)', () => {
  // postsrsd stamps with today's date: ours runs on the real clock too.
  const ours = new Srs({ secrets: [SECRET], domain: DOMAIN, scheme: 'postsrsd' });

  it('writes the same SRS0 and SRS1 addresses, and each side reverses the other', async () => {
    const senders = fc.sample(
      fc.tuple(fc.stringMatching(/^[a-z0-9][a-z0-9._+-]{0,30}$/), fc.domain()),
      { numRuns: 40, seed: 20261124 },
    );
    const cases = [
      ...senders.map(([local, domain]) => `${local}@${domain}`),
      'SRS0=abcd=xy=first.test=bob@hop.test',
      'SRS1=zzzz=first.test==abcd=xy=orig.test=u@hop2.test',
    ];
    for (const sender of cases) {
      const theirs = await lookup(forwardPort, sender);
      expect(theirs).toMatch(/^200 /);
      const written = theirs.slice(4);
      expect(ours.forward(sender)).toBe(written);
      // Theirs is accepted by ours, and both reverse it alike: to the sender, or for an
      // SRS address, to the previous hop's SRS0 address.
      const reversed = ours.reverse(written);
      expect(await lookup(reversePort, written)).toBe(`200 ${reversed}`);
      if (!Srs.isSrs(sender)) expect(reversed).toBe(sender);
      else expect(reversed).toMatch(/^SRS0=/);
    }
  });

  it('neither side accepts a forged hash from the other', async () => {
    const genuine = ours.forward('alice@origin.test');
    const forged = genuine.replace(/^SRS0=(.)/, (_, first: string) =>
      first === 'A' ? 'SRS0=B' : 'SRS0=A',
    );
    expect(forged).not.toBe(genuine);
    expect(await lookup(reversePort, forged)).not.toMatch(/^200 /);
    expect(() => ours.reverse(forged)).toThrow(expect.objectContaining({ code: 'SRS_FORGED' }));
  });
});
