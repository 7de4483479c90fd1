import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { BrokenCircuitError, circuitBreaker, InvalidOptionError } from '../src/index.js';
import { RedisBreakerStore } from '../src/redis.js';
import { breakerStoreContract, ManualClock } from '../src/testing.js';

const url = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const prefix = `test:resilience:${randomUUID()}:`;
const clients: Redis[] = [];

function client(): Redis {
  const redis = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 1 });
  clients.push(redis);
  return redis;
}

/** Waits until `ms` have passed on Redis's clock since the circuit `key` opened. */
async function untilRedisTime(key: string, ms: number): Promise<void> {
  const store = new RedisBreakerStore({ redis: client(), prefix });
  for (;;) {
    const state = await store.load(key);
    if (state.now >= state.openedAt + ms) return;
    await sleep(state.openedAt + ms - state.now);
  }
}

afterAll(async () => {
  const redis = clients[0] ?? client();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
  await Promise.all(clients.map((redis) => redis.quit()));
});

breakerStoreContract(
  'RedisBreakerStore',
  () => new RedisBreakerStore({ redis: client(), prefix }),
  { describe, it, expect },
);

describe('RedisBreakerStore', () => {
  it('keeps every key of a circuit under one hash tag, with a TTL', async () => {
    const redis = client();
    const store = new RedisBreakerStore({ redis, prefix, ttlMs: 60_000 });
    expect(store.redisKey('smtp-relay')).toBe(`${prefix}{smtp-relay}`);
    await store.open('smtp-relay', 0);
    const ttl = await redis.pttl(store.redisKey('smtp-relay'));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('two processes (two clients) share one circuit and never probe at once', async () => {
    const clock = new ManualClock(Date.now());
    const key = `shared-${randomUUID()}`;
    const make = (): ReturnType<typeof circuitBreaker> =>
      circuitBreaker({
        clock,
        strategy: { kind: 'consecutive', threshold: 1 },
        halfOpenAfterMs: 100,
        shared: {
          store: new RedisBreakerStore({ redis: client(), prefix }),
          key,
          syncIntervalMs: 0,
        },
      });
    const processA = make();
    const processB = make();
    await expect(processA.execute(() => Promise.reject(new Error('relay down')))).rejects.toThrow(
      'relay down',
    );
    await expect(processB.execute(() => 'x')).rejects.toBeInstanceOf(BrokenCircuitError);
    await untilRedisTime(key, 100);
    clock.advance(100);
    let probes = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const calls = [processA, processB, processA, processB].flatMap((breaker) =>
      Array.from({ length: 10 }, () =>
        breaker.execute(async () => {
          probes++;
          await gate;
          return 'probe';
        }),
      ),
    );
    let finished = 0;
    for (const call of calls)
      call.then(
        () => finished++,
        () => finished++,
      );
    const settled = Promise.allSettled(calls);
    // Wait (by events, not by time) until every call but the probe has had its answer from Redis.
    while (finished < calls.length - 1) await new Promise((resolve) => setImmediate(resolve));
    expect(probes).toBe(1);
    release();
    const results = await settled;
    expect(probes).toBe(1);
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
    await expect(processB.execute(() => 'closed again')).resolves.toBe('closed again');
  });

  it('decides open and half-open on Redis time: processes whose clocks are skewed by more than halfOpenAfterMs agree', async () => {
    const key = `skew-${randomUUID()}`;
    const halfOpenAfterMs = 200;
    const skewMs = 60_000;
    const make = (clock: ManualClock): ReturnType<typeof circuitBreaker> =>
      circuitBreaker({
        clock,
        strategy: { kind: 'consecutive', threshold: 1 },
        halfOpenAfterMs,
        shared: {
          store: new RedisBreakerStore({ redis: client(), prefix }),
          key,
          syncIntervalMs: 0,
        },
      });
    const now = Date.now();
    const clocks = [
      new ManualClock(now),
      new ManualClock(now + skewMs),
      new ManualClock(now - skewMs),
    ];
    const [opener, ahead, behind] = clocks.map(make) as [
      ReturnType<typeof circuitBreaker>,
      ReturnType<typeof circuitBreaker>,
      ReturnType<typeof circuitBreaker>,
    ];
    await expect(opener.execute(() => Promise.reject(new Error('relay down')))).rejects.toThrow(
      'relay down',
    );
    // A clock running ahead must not make a circuit that has only just opened look due.
    let ran = false;
    const early = await ahead
      .execute(() => {
        ran = true;
        return 'too early';
      })
      .catch((error: unknown) => error);
    expect(BrokenCircuitError.isInstance(early)).toBe(true);
    expect(ran).toBe(false);
    // A clock running behind must not add its skew to the wait.
    const late = await behind.execute(() => 'x').catch((error: unknown) => error);
    expect(BrokenCircuitError.isInstance(late)).toBe(true);
    expect((late as BrokenCircuitError).retryAfterMs).toBeLessThanOrEqual(halfOpenAfterMs);
    // Once halfOpenAfterMs has passed on Redis's clock, the process running behind probes.
    await untilRedisTime(key, halfOpenAfterMs);
    for (const clock of clocks) clock.advance(halfOpenAfterMs);
    await expect(behind.execute(() => 'probe')).resolves.toBe('probe');
    await expect(ahead.execute(() => 'closed')).resolves.toBe('closed');
  });

  it('a probe whose caller aborted gives its lease back at once: another process probes right after', async () => {
    const clock = new ManualClock(Date.now());
    const key = `abort-${randomUUID()}`;
    const store = new RedisBreakerStore({ redis: client(), prefix });
    const make = (): ReturnType<typeof circuitBreaker> =>
      circuitBreaker({
        clock,
        strategy: { kind: 'consecutive', threshold: 1 },
        halfOpenAfterMs: 0,
        shared: {
          store: new RedisBreakerStore({ redis: client(), prefix }),
          key,
          syncIntervalMs: 0,
          probeLeaseMs: 600_000,
        },
      });
    const processA = make();
    const processB = make();
    await expect(processA.execute(() => Promise.reject(new Error('relay down')))).rejects.toThrow(
      'relay down',
    );
    const controller = new AbortController();
    let started!: () => void;
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    const probe = processA.execute(
      ({ signal }) =>
        new Promise((_, reject) => {
          started();
          signal.addEventListener('abort', () => reject(signal.reason as Error));
        }),
      controller.signal,
    );
    await Promise.race([running, probe]);
    await expect(processB.execute(() => 'x')).rejects.toBeInstanceOf(BrokenCircuitError);
    const reason = new Error('client went away');
    controller.abort(reason);
    await expect(probe).rejects.toBe(reason);
    expect(processA.stats().ignored).toBe(1);
    // The release is on its way to Redis on A's connection; B's commands use another one.
    for (let i = 0; i < 100 && (await store.load(key)).probeUntil !== 0; i++) await sleep(1);
    await expect(processB.execute(() => 'second probe')).resolves.toBe('second probe');
    expect((await store.load(key)).state).toBe('closed');
  });

  it('two versions of the script never collide: names carry a hash of the script text', () => {
    const redis = client();
    const defined: string[] = [];
    const spy = new Proxy(redis, {
      get(target, property, receiver) {
        if (property === 'defineCommand') {
          return (name: string, definition: { numberOfKeys: number; lua: string }) => {
            defined.push(name);
            target.defineCommand(name, definition);
          };
        }
        return Reflect.get(target, property, receiver) as unknown;
      },
    });
    new RedisBreakerStore({ redis: spy, prefix });
    expect(defined).toHaveLength(6);
    for (const name of defined) expect(name).toMatch(/^postern[A-Za-z]+_[0-9a-z]+$/);
    // A second store on the same client reuses the commands.
    new RedisBreakerStore({ redis: spy, prefix });
    expect(defined).toHaveLength(6);
  });

  it('rejects invalid options naming the option', () => {
    expect(() => new RedisBreakerStore({ redis: {} as never })).toThrow(InvalidOptionError);
    expect(() => new RedisBreakerStore({ redis: client(), ttlMs: 0 })).toThrow('"ttlMs"');
    expect(() => new RedisBreakerStore({ redis: client(), prefix: 5 as never })).toThrow(
      '"prefix"',
    );
  });
});

describe('RedisBreakerStore when Redis is unreachable', () => {
  // A port nothing listens on; the clients never connect, so they are disconnected, not quit.
  const unreachable = 'redis://127.0.0.1:1';

  it('a client that fails fast: calls still run and the failures go to onStoreError', async () => {
    const redis = new Redis(unreachable, {
      lazyConnect: true,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
    try {
      const breaker = circuitBreaker({
        strategy: { kind: 'consecutive', threshold: 1 },
        shared: { store: new RedisBreakerStore({ redis, prefix }), key: randomUUID() },
      });
      const storeErrors: unknown[] = [];
      breaker.onStoreError((error) => storeErrors.push(error));
      await expect(breaker.execute(() => 'ran')).resolves.toBe('ran');
      await expect(breaker.execute(() => Promise.reject(new Error('own')))).rejects.toThrow('own');
      expect(storeErrors.length).toBeGreaterThan(0);
    } finally {
      redis.disconnect();
    }
  });

  it('a client that queues commands while reconnecting: storeTimeoutMs bounds the wait', async () => {
    const redis = new Redis(unreachable, { maxRetriesPerRequest: null });
    redis.on('error', () => undefined);
    try {
      const breaker = circuitBreaker({
        shared: {
          store: new RedisBreakerStore({ redis, prefix }),
          key: randomUUID(),
          storeTimeoutMs: 20,
        },
      });
      const storeErrors: unknown[] = [];
      breaker.onStoreError((error) => storeErrors.push(error));
      await expect(breaker.execute(() => 'ran')).resolves.toBe('ran');
      expect(storeErrors).toMatchObject([{ code: 'TIMEOUT' }]);
    } finally {
      redis.disconnect();
    }
  });
});
