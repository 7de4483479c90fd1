import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SyncQueue } from '../src/index.js';
import { RedisBackend } from '../src/redis.js';
import { backendContract } from '../src/testing.js';
import { ownedRedis } from './fixtures/servers.js';
import type { OwnedRedis } from './fixtures/servers.js';

const run = promisify(execFile);
const nodes: OwnedRedis[] = [];
let cluster: Cluster;

beforeAll(async () => {
  // A real 3-master cluster on spare ports, started for this file only.
  for (let index = 0; index < 3; index += 1) {
    const node = await ownedRedis([
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      'nodes.conf',
      '--cluster-node-timeout',
      '2000',
    ]);
    await node.start();
    nodes.push(node);
  }
  await run('redis-cli', [
    '--cluster',
    'create',
    ...nodes.map((node) => `127.0.0.1:${node.port}`),
    '--cluster-replicas',
    '0',
    '--cluster-yes',
  ]);
  for (const node of nodes) {
    const probe = new Redis({ port: node.port, host: '127.0.0.1' });
    for (
      let tries = 0;
      tries < 200 && !(await probe.cluster('INFO')).includes('cluster_state:ok');
      tries += 1
    ) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await probe.quit();
  }
  cluster = new Cluster(nodes.map((node) => ({ host: '127.0.0.1', port: node.port })));
}, 60_000);

afterAll(async () => {
  await cluster?.quit();
  await Promise.all(nodes.map((node) => node.destroy()));
});

backendContract({
  name: 'RedisBackend on a 3-master Redis Cluster',
  create: (clock) => new RedisBackend({ redis: cluster, clock, checkEvictionPolicy: false }),
  runner: { describe, it },
});

describe('SyncQueue on Redis Cluster', () => {
  it('runs queues whose keys live on different masters', async () => {
    const backend = new RedisBackend({ redis: cluster, checkEvictionPolicy: false });
    const names = Array.from({ length: 12 }, (_, index) => `cluster-queue-${index}`);
    const masters = new Set<string>();
    for (const name of names) {
      const slot = Number(await cluster.cluster('KEYSLOT', `postern:sq:{${name}}:q`));
      const shards = await cluster.cluster('SLOTS');
      const owner = shards.find(([from, to]) => slot >= from && slot <= to);
      masters.add(String(owner?.[2]?.[1]));
    }
    expect(masters.size).toBe(3);
    for (const name of names) {
      const queue = new SyncQueue<string>({ name, backend });
      const done = new Promise<string>((resolve) =>
        queue.onCompleted(({ job }) => resolve(job.payload)),
      );
      await queue.add('a', { key: 'k' });
      await queue.add('b', { key: 'k' });
      const worker = queue.process(() => undefined, { pollIntervalMs: 10 });
      expect(await done).toBe('b');
      await worker.close();
    }
  });
});
