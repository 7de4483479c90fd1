import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { combine, createRateLimiter } from '../src/index.js';
import { RedisBackend, redisKey } from '../src/redis.js';
import { backendContract } from '../src/testing.js';
import { startRedis, type OwnRedis } from './helpers.js';

// A real 3-master Redis Cluster on ephemeral ports, started for this file and removed after.
const CLUSTER_BUS_OFFSET = 10_000;
let nodes: OwnRedis[] = [];
const clients: Cluster[] = [];

async function waitForClusterOk(ports: number[]): Promise<void> {
  for (const port of ports) {
    const probe = new Redis({ port, host: '127.0.0.1' });
    try {
      for (let attempt = 0; ; attempt += 1) {
        const info = await probe.cluster('INFO');
        if (info.includes('cluster_state:ok')) break;
        if (attempt > 200) throw new Error(`cluster node ${port} never reached cluster_state:ok`);
        await sleep(50);
      }
    } finally {
      probe.disconnect();
    }
  }
}

beforeAll(async () => {
  nodes = await Promise.all(
    [0, 1, 2].map(() =>
      startRedis(
        ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf'],
        CLUSTER_BUS_OFFSET,
      ),
    ),
  );
  const ports = nodes.map((node) => node.port);
  const created = spawnSync(
    'redis-cli',
    [
      '--cluster',
      'create',
      ...ports.map((port) => `127.0.0.1:${port}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ],
    { encoding: 'utf8' },
  );
  if (created.status !== 0)
    throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
  await waitForClusterOk(ports);
  for (let index = 0; index < 4; index += 1) {
    const cluster = new Cluster([{ host: '127.0.0.1', port: ports[index % 3]! }]);
    clients.push(cluster);
  }
  await Promise.all(clients.map((cluster) => cluster.ping()));
}, 60_000);

afterAll(async () => {
  await Promise.all(clients.map((cluster) => cluster.quit()));
  await Promise.all(nodes.map((node) => node.stop()));
});

backendContract({
  name: 'RedisBackend on a 3-master Redis Cluster (4 ioredis Cluster clients)',
  describe,
  it,
  createFixture: () => ({
    backends: clients.map((redis) => new RedisBackend({ redis, onError: 'throw' })),
    periodMs: 1_000,
    advance: (ms) => sleep(ms),
    stored: async (prefix, key) => (await clients[0]!.exists(redisKey(prefix, key))) === 1,
  }),
});

describe('RedisBackend on a Redis Cluster', () => {
  it('spreads subjects over every master and keeps all limits of one subject on one slot', async () => {
    const backend = new RedisBackend({ redis: clients[0]!, onError: 'throw' });
    const both = combine(
      createRateLimiter({ limit: 5, periodMs: 60_000, prefix: 'cluster-a', backend }),
      createRateLimiter({ limit: 3, periodMs: 60_000, prefix: 'cluster-b', backend }),
    );
    const subjects = Array.from({ length: 30 }, (_, index) => `subject-${index}`);
    for (const subject of subjects) expect((await both.consume(subject)).allowed).toBe(true);
    const perNode = await Promise.all(clients[0]!.nodes('master').map((node) => node.dbsize()));
    expect(perNode.filter((count) => count > 0)).toHaveLength(3);
    expect(perNode.reduce((sum, count) => sum + count, 0)).toBe(60);
    const slots = await Promise.all(
      ['cluster-a', 'cluster-b'].map((prefix) =>
        clients[0]!.cluster('KEYSLOT', redisKey(prefix, 'subject-7')),
      ),
    );
    expect(slots[0]).toBe(slots[1]);
    for (const subject of subjects) await both.reset(subject);
  });
});
