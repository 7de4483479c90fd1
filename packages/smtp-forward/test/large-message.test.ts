import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import nodemailer from 'nodemailer';
import { SMTPServer } from 'smtp-server';
import { afterAll, describe, expect, it } from 'vitest';
import { SmtpForwarder, staticResolver } from '../src/index.js';
import type { SmtpForwarderOptions } from '../src/index.js';
import { collectionsDuring } from './helpers.js';

// A full collection on demand, so the samples below count bytes that are held, not garbage waiting for the GC.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const MESSAGE_BYTES = 40 * 2 ** 20;
const closers: (() => Promise<void>)[] = [];

afterAll(async () => {
  for (const close of closers.reverse()) await close();
});

/** A relay that keeps only a running SHA-256 of each body it receives (everything after the header block). */
async function hashingRelay(): Promise<{
  port: number;
  bodies: { sha256: string; bytes: number }[];
}> {
  const bodies: { sha256: string; bytes: number }[] = [];
  const server = new SMTPServer({
    disabledCommands: ['AUTH', 'STARTTLS'],
    authOptional: true,
    logger: false,
    disableReverseLookup: true,
    size: 64 * 2 ** 20,
    onData(stream, _session, callback) {
      const hash = createHash('sha256');
      let head: Buffer | undefined = Buffer.alloc(0);
      let bytes = 0;
      stream.on('data', (chunk: Buffer) => {
        if (head === undefined) {
          hash.update(chunk);
          bytes += chunk.length;
          return;
        }
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end >= 0) {
          const body = head.subarray(end + 4);
          hash.update(body);
          bytes += body.length;
          head = undefined;
        }
      });
      stream.on('end', () => {
        bodies.push({ sha256: hash.digest('hex'), bytes });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.server.address() as AddressInfo).port, bodies };
}

/** Distinct 78-byte lines (no leading dot), generated on demand and hashed as they are produced. */
function generatedBody(bytes: number, hash: ReturnType<typeof createHash>): Readable {
  let line = 0;
  let produced = 0;
  return new Readable({
    read() {
      if (produced >= bytes) {
        this.push(null);
        return;
      }
      const lines: string[] = [];
      for (let i = 0; i < 800; i += 1)
        lines.push(`${(line++).toString(36).padStart(8, '0')} ${'y'.repeat(67)}\r\n`);
      const chunk = Buffer.from(lines.join(''), 'latin1');
      produced += chunk.length;
      hash.update(chunk);
      this.push(chunk);
    },
  });
}

/** A plain forwarder to `relayPort`, closed after the file; resolves with its port. */
async function startForwarder(
  relayPort: number,
  options: Partial<SmtpForwarderOptions> = {},
): Promise<number> {
  const forwarder = new SmtpForwarder({
    domain: 'fwd.test',
    resolver: staticResolver({ 'alice@fwd.test': 'alice@dest.test' }),
    transport: { relays: [{ host: '127.0.0.1', port: relayPort }] },
    srs: { secrets: ['test-secret-0123456789abcdef'] },
    limits: { maxMessageBytes: 64 * 2 ** 20 },
    fromRewrite: 'never',
    ...options,
  });
  closers.push(() => forwarder.close({ timeoutMs: 100 }));
  return (await forwarder.listen({ port: 0, host: '127.0.0.1' })).port;
}

/** Sends one message with a generated body of `bytes` (hashed into `sent`); resolves with the reply. */
async function sendGenerated(
  port: number,
  bytes: number,
  sent: ReturnType<typeof createHash>,
): Promise<string> {
  const client = nodemailer.createTransport({ host: '127.0.0.1', port, socketTimeout: 60_000 });
  try {
    const body = generatedBody(bytes, sent);
    const info = (await client.sendMail({
      envelope: { from: 'sender@origin.test', to: ['alice@fwd.test'] },
      raw: Readable.from(
        (async function* () {
          yield Buffer.from(
            'From: sender@origin.test\r\nTo: alice@fwd.test\r\nSubject: large\r\n\r\n',
          );
          yield* body;
        })(),
      ),
    })) as { response: string };
    return info.response;
  } finally {
    client.close();
  }
}

describe('a large message', () => {
  it('streams 40 MB through to the relay intact while holding a small, bounded amount of memory', async () => {
    const relay = await hashingRelay();
    const port = await startForwarder(relay.port);

    // V8 frees dead Buffers' memory on a background sweeper after a GC: two collections and a 10 ms
    // pause let process.memoryUsage() catch up, or garbage would be counted as held.
    const live = async (): Promise<number> => {
      gc();
      gc();
      await new Promise((resolve) => setTimeout(resolve, 10));
      const usage = process.memoryUsage();
      return usage.heapUsed + usage.arrayBuffers;
    };
    const baseline = await live();
    let peak = 0;
    let sampling = false;
    // Sampling only looks for the largest live set; the assertion is on bytes, never on time.
    const sampler = setInterval(() => {
      if (sampling) return;
      sampling = true;
      void live().then((value) => {
        peak = Math.max(peak, value - baseline);
        sampling = false;
      });
    }, 100);
    const sent = createHash('sha256');
    try {
      expect(await sendGenerated(port, MESSAGE_BYTES, sent)).toMatch(/^250 /);
    } finally {
      clearInterval(sampler);
    }
    expect(relay.bodies).toHaveLength(1);
    expect(relay.bodies[0]!.bytes).toBeGreaterThanOrEqual(MESSAGE_BYTES);
    expect(relay.bodies[0]!.sha256).toBe(sent.digest('hex'));
    // The whole message is 40 MiB; sender, forwarder and relay together hold about 2 MiB (up to 14 on a
    // loaded machine, where the sweeper lags). Buffering the message, they would hold over 100 MiB.
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThan(20 * 2 ** 20);
  }, 60_000);

  it('frees its socket buffers as it streams: a young collection every collectGarbageEveryBytes', async () => {
    const relay = await hashingRelay();
    const bytes = 8 * 2 ** 20;
    const run = async (options: Partial<SmtpForwarderOptions>): Promise<number> => {
      const port = await startForwarder(relay.port, options);
      const sent = createHash('sha256');
      const collections = await collectionsDuring(async () => {
        expect(await sendGenerated(port, bytes, sent)).toMatch(/^250 /);
      });
      expect(relay.bodies.at(-1)!.sha256).toBe(sent.digest('hex'));
      return collections;
    };
    // 8 MiB in and (spilled to disk past limits.memoryBytes) 8 MiB read back out: 64 chunks of 256 KiB.
    const every = await run({ collectGarbageEveryBytes: 256 * 1024 });
    const off = await run({ collectGarbageEveryBytes: false });
    // Half of them at least: under load Node may deliver GC entries of collections made close
    // together late or merged (the memory.test.ts check counts single collections exactly).
    expect(every).toBeGreaterThanOrEqual(32);
    expect(off).toBeLessThan(every / 3);
  }, 60_000);
});
