import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';

export const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';

/** A free TCP port from the OS, optionally with `port + offset` free as well (cluster bus). */
export async function freePort(offset = 0): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const port = await listenOnce(0);
    if (offset === 0 || port + offset > 65_535) {
      if (offset === 0) return port;
      continue;
    }
    try {
      await listenOnce(port + offset);
      return port;
    } catch {
      // The bus port is taken; try another.
    }
  }
  throw new Error('no free port pair found');
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
  const port = await freePort(busOffset);
  const dir = mkdtempSync(join(tmpdir(), 'postern-rl-'));
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
  const probe = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
  });
  probe.on('error', () => undefined);
  for (let attempt = 0; ; attempt += 1) {
    try {
      await probe.connect();
      await probe.ping();
      break;
    } catch {
      if (attempt > 100) throw new Error(`redis-server on ${port} did not start`);
      probe.disconnect();
      await sleep(50);
    }
  }
  probe.disconnect();
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
