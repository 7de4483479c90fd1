import { connect } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SmtpForwarder, staticResolver } from '../src/index.js';
import { RawClient, startRelay } from './helpers.js';
import type { TestRelay } from './helpers.js';

let sink: TestRelay;
let forwarder: SmtpForwarder;
let port: number;

beforeAll(async () => {
  sink = await startRelay();
  forwarder = new SmtpForwarder({
    domain: 'fwd.test',
    resolver: staticResolver({ 'alice@fwd.test': 'alice@dest.test' }),
    transport: { relays: [{ host: '127.0.0.1', port: sink.port }] },
    fromRewrite: 'never',
    limits: { maxMessageBytes: 50_000, maxConnectionsPerIp: 1000, idleTimeoutMs: 2000 },
  });
  ({ port } = await forwarder.listen({ port: 0, host: '127.0.0.1' }));
});

afterAll(async () => {
  await forwarder.close({ timeoutMs: 100 });
  await sink.close();
});

/** Writes bytes, then drops the connection; resolves when the socket is closed. */
function blast(chunks: Buffer[]): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.on('close', () => resolve());
    socket.on('connect', () => {
      for (const chunk of chunks) socket.write(chunk);
      setImmediate(() => socket.destroy());
    });
  });
}

async function waitFor(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10));
}

describe('bad input through real sockets', () => {
  it('survives random, oversized, NUL-laden and truncated sessions, and leaks no connection', async () => {
    const prefix = fc.constantFrom(
      '',
      'EHLO x\r\n',
      'EHLO x\r\nMAIL FROM:<a@o.test>\r\nRCPT TO:<alice@fwd.test>\r\nDATA\r\n',
    );
    await fc.assert(
      fc.asyncProperty(
        prefix,
        fc.array(fc.uint8Array({ maxLength: 3000 }), { maxLength: 4 }),
        async (head, chunks) => {
          await blast([Buffer.from(head), ...chunks.map((c) => Buffer.from(c))]);
        },
      ),
      { numRuns: 120 },
    );
    await blast([Buffer.from(`EHLO ${'x'.repeat(100_000)}\r\n`)]);
    await blast([
      Buffer.from(
        'EHLO x\r\nMAIL FROM:<a@o.test>\r\nRCPT TO:<alice@fwd.test>\r\nDATA\r\nSubject: cut\r\n\r\nhalf a mess',
      ),
    ]);
    // Thousands of sessions opened and abandoned.
    for (let batch = 0; batch < 10; batch += 1)
      await Promise.all(Array.from({ length: 100 }, () => blast([])));
    await waitFor(() => forwarder.stats().activeConnections === 0);
    expect(forwarder.stats().activeConnections).toBe(0);
    // Still serving, and what it accepts is delivered.
    const before = sink.messages.length;
    const client = await RawClient.atData(port);
    expect(await client.send('Subject: after fuzz\r\n\r\nstill here\r\n.\r\n')).toMatch(/^250/);
    client.close();
    expect(sink.messages.length).toBe(before + 1);
    expect(forwarder.stats().accepted).toBe(forwarder.stats().forwarded);
  }, 60_000);

  it('answers NUL bytes and garbage commands without crashing, then closes after too many', async () => {
    const client = await RawClient.open(port);
    expect(await client.send('EHLO x\r\n')).toMatch(/^250/);
    expect(await client.send('\u0000\u0000\u0000\r\n')).toMatch(/^5/);
    let last = '';
    for (let i = 0; i < 12 && !last.startsWith('421') && last !== 'closed'; i += 1)
      last = await client.send(`BOGUS${i}\r\n`);
    expect(last).toMatch(/^421|closed/);
    client.close();
  });
});
