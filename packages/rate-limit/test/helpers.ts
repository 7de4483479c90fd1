import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';

export const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';

/**
 * A free TCP port, optionally with `port + offset` free as well (cluster bus). Ports come from
 * 11000-21999 (buses up to 31999): below Linux's ephemeral range (32768+), so no outgoing
 * connection of a test running in parallel can take one between this check and the bind.
 */
export async function freePort(offset = 0): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const port = 11_000 + Math.floor(Math.random() * 11_000);
    try {
      await listenOnce(port);
      if (offset !== 0) await listenOnce(port + offset);
      return port;
    } catch {
      // Taken; try another.
    }
  }
  throw new Error('no free port found');
}

function listenOnce(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        resolve(typeof address === 'object' && address !== null ? address.port : port),
      );
    });
  });
}

/** A redis-server of our own, on an ephemeral port, for outage tests and the cluster. */
export interface OwnRedis {
  readonly port: number;
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

export async function startRedis(extraArgs: string[] = [], busOffset = 0): Promise<OwnRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-rl-'));
  // A server that cannot bind its port (another test took it after the check) exits: try another.
  for (let start = 0; ; start += 1) {
    const port = await freePort(busOffset);
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
        ...extraArgs,
      ],
      { stdio: 'ignore' },
    );
    if (await answers(port, child)) return ownRedis(port, child, dir);
    if (child.exitCode === null) child.kill('SIGKILL');
    if (start >= 4) throw new Error(`redis-server did not start (last port ${port})`);
  }
}

/** Waits up to ~5 s for the server to answer PING; false if it exits or never answers. */
async function answers(port: number, child: ChildProcess): Promise<boolean> {
  const probe = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
  });
  probe.on('error', () => undefined);
  try {
    for (let attempt = 0; attempt <= 100; attempt += 1) {
      if (child.exitCode !== null) return false;
      try {
        await probe.connect();
        await probe.ping();
        return true;
      } catch {
        probe.disconnect();
        await sleep(50);
      }
    }
    return false;
  } finally {
    probe.disconnect();
  }
}

function ownRedis(port: number, child: ChildProcess, dir: string): OwnRedis {
  return {
    port,
    process: child,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGCONT');
        child.kill('SIGKILL');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
