import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { smtpEhloCheck } from '../src/health.js';

let sink: ChildProcess;
let sinkPort = 0;
let silent: Server;
let silentPort = 0;

/**
 * A loopback port with nothing listening on it, from 11000-31999: below Linux's ephemeral range
 * (32768+), so no outgoing connection of a test running in parallel takes it before a server
 * started on it (smtp-sink, postsrsd) binds it.
 */
async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const port = 11_000 + Math.floor(Math.random() * 21_000);
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port found');
}

beforeAll(async () => {
  sinkPort = await freePort();
  // smtp-sink refuses to run as root without a user to drop to.
  const asRoot = process.getuid?.() === 0 ? ['-u', 'nobody'] : [];
  sink = spawn('/usr/sbin/smtp-sink', [...asRoot, '-c', `127.0.0.1:${sinkPort}`, '10'], {
    stdio: 'ignore',
  });
  for (let attempt = 0; attempt < 50; attempt += 1) {
    try {
      await smtpEhloCheck('127.0.0.1', sinkPort)(new AbortController().signal);
      break;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  silent = createServer((socket) => socket.write('HTTP/1.1 400 Bad Request\r\n\r\n'));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const address = silent.address();
  silentPort = typeof address === 'object' && address !== null ? address.port : 0;
});

afterAll(async () => {
  sink.kill('SIGTERM');
  await new Promise<void>((resolve) => silent.close(() => resolve()));
});

describe('smtpEhloCheck', () => {
  it('passes against a real SMTP server (Postfix smtp-sink)', async () => {
    await expect(
      smtpEhloCheck('127.0.0.1', sinkPort)(new AbortController().signal),
    ).resolves.toBeUndefined();
  });

  it('fails when the port does not speak SMTP, and when nothing listens', async () => {
    await expect(
      smtpEhloCheck('127.0.0.1', silentPort)(new AbortController().signal),
    ).rejects.toThrow('the peer does not speak SMTP');
    await expect(
      smtpEhloCheck('127.0.0.1', await freePort())(new AbortController().signal),
    ).rejects.toThrow(/ECONNREFUSED/);
  });

  it('stops when its signal is aborted', async () => {
    const hang = createServer(() => undefined);
    await new Promise<void>((resolve) => hang.listen(0, '127.0.0.1', resolve));
    const address = hang.address();
    const controller = new AbortController();
    const pending = smtpEhloCheck(
      '127.0.0.1',
      typeof address === 'object' && address !== null ? address.port : 0,
    )(controller.signal);
    setImmediate(() => controller.abort());
    await expect(pending).rejects.toThrow('aborted');
    await new Promise<void>((resolve) => hang.close(() => resolve()));
  });
});
