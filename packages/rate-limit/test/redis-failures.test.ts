import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createRateLimiter, MemoryBackend, RateLimitError } from '../src/index.js';
import { RedisBackend, redisKey } from '../src/redis.js';
import type { RedisBackendStateChange, RedisScriptClient } from '../src/redis.js';
import { ManualClock } from '../src/testing.js';
import { freePort, startRedis, type OwnRedis } from './helpers.js';

// A private redis-server: these tests pause it (SIGSTOP) to make Redis slow, which must not
// disturb the shared Redis other packages test against.
let own: OwnRedis;
let redis: Redis;

beforeAll(async () => {
  own = await startRedis();
  redis = new Redis({ port: own.port, host: '127.0.0.1' });
});

afterAll(async () => {
  redis.disconnect();
  await own.stop();
});

function pause(): void {
  own.process.kill('SIGSTOP');
}
function resume(): void {
  own.process.kill('SIGCONT');
}

function setup(options: {
  onError: 'fallback' | 'fail-open' | 'fail-closed' | 'throw';
  prefix: string;
}) {
  const clock = new ManualClock();
  const changes: RedisBackendStateChange[] = [];
  const backend = new RedisBackend({
    redis,
    timeoutMs: 100,
    probeIntervalMs: 5_000,
    clock,
    onError: options.onError,
  });
  backend.onStateChange((change) => changes.push(change));
  const limiter = createRateLimiter({
    limit: 2,
    periodMs: 60_000,
    prefix: options.prefix,
    backend,
  });
  return { clock, changes, backend, limiter };
}

describe('RedisBackend when Redis is slow or gone', () => {
  it('throws BACKEND_TIMEOUT within the timeout, then BACKEND_UNAVAILABLE until the probe, then returns to Redis', async () => {
    const { clock, changes, backend, limiter } = setup({ onError: 'throw', prefix: 'throw' });
    pause();
    try {
      const timedOut = await limiter.consume('k').catch((error: unknown) => error);
      expect(RateLimitError.isInstance(timedOut)).toBe(true);
      expect(timedOut).toMatchObject({ code: 'BACKEND_TIMEOUT', timeoutMs: 100 });
      expect(backend.state).toBe('degraded');
      expect(changes).toEqual([{ state: 'degraded', error: timedOut }]);
      clock.advance(1_000);
      await expect(limiter.consume('k')).rejects.toMatchObject({
        code: 'BACKEND_UNAVAILABLE',
        retryAfterMs: 4_000,
      });
    } finally {
      resume();
    }
    clock.advance(4_000);
    const back = await limiter.consume('k');
    expect(back.allowed).toBe(true);
    expect(backend.state).toBe('redis');
    expect(changes.map((change) => change.state)).toEqual(['degraded', 'redis']);
    await limiter.reset('k');
  });

  it('falls back to a local memory limiter that still enforces the limit, and only on store errors', async () => {
    const { clock, changes, backend, limiter } = setup({ onError: 'fallback', prefix: 'fallback' });
    // An ordinary denial is an answer, not a failure: the fallback is never asked.
    await limiter.consume('k', { cost: 2 });
    expect((await limiter.consume('k')).allowed).toBe(false);
    expect(backend.state).toBe('redis');
    expect(changes).toEqual([]);
    await limiter.reset('k');

    pause();
    try {
      const results = [
        await limiter.consume('k'),
        await limiter.consume('k'),
        await limiter.consume('k'),
      ];
      expect(results.map((result) => result.allowed)).toEqual([true, true, false]);
      expect(changes.map((change) => change.state)).toEqual(['degraded']);
      expect(changes[0]!.error?.code).toBe('BACKEND_TIMEOUT');
    } finally {
      resume();
    }
    clock.advance(5_000);
    // Redis answers with its own state again (the call that timed out reached it late).
    const back = await limiter.consume('k');
    expect(backend.state).toBe('redis');
    expect(back.allowed).toBe(true);
    expect(changes.map((change) => change.state)).toEqual(['degraded', 'redis']);
    await limiter.reset('k');
  });

  it('fails open or closed as asked, with a retry time of the next probe when closed', async () => {
    const open = setup({ onError: 'fail-open', prefix: 'open' });
    const closed = setup({ onError: 'fail-closed', prefix: 'closed' });
    // Ordinary denials stay denials when failing open.
    await open.limiter.consume('k', { cost: 2 });
    expect((await open.limiter.consume('k')).allowed).toBe(false);
    pause();
    try {
      const [opened, shut] = await Promise.all([
        open.limiter.consume('k', { cost: 2 }),
        closed.limiter.consume('k'),
      ]);
      expect(opened).toEqual({
        allowed: true,
        remaining: 0,
        retryAfterMs: 0,
        resetAfterMs: 60_000,
      });
      expect(shut).toEqual({
        allowed: false,
        remaining: 0,
        retryAfterMs: 5_000,
        resetAfterMs: 60_000,
      });
      closed.clock.advance(4_500);
      expect((await closed.limiter.consume('k')).retryAfterMs).toBe(500);
    } finally {
      resume();
    }
    await open.limiter.reset('k');
    await closed.limiter.reset('k');
  });

  it('probes with one call while the others keep the fallback answer', async () => {
    const { clock, changes, backend, limiter } = setup({ onError: 'fallback', prefix: 'probe' });
    pause();
    try {
      await limiter.consume('k');
      clock.advance(5_000);
      const probe = limiter.consume('k');
      // Redis is still paused: this call must not wait for it.
      const meanwhile = await limiter.consume('k');
      expect(meanwhile.allowed).toBe(true);
      expect(meanwhile.remaining).toBe(0);
      expect((await probe).allowed).toBe(false);
      expect(backend.state).toBe('degraded');
      expect(changes.map((change) => change.state)).toEqual(['degraded']);
    } finally {
      resume();
    }
    await limiter.reset('k');
  });

  it('returns to Redis when the probe lands on a key of another type', async () => {
    const { clock, changes, backend, limiter } = setup({
      onError: 'fallback',
      prefix: 'probe-wrongtype',
    });
    await redis.hset(redisKey('probe-wrongtype', 'bad'), 'field', 'value');
    pause();
    try {
      await limiter.consume('k');
      expect(backend.state).toBe('degraded');
    } finally {
      resume();
    }
    clock.advance(5_000);
    // The probe's only call fails on its own key, but Redis answered: that is a recovery.
    expect((await limiter.consume('bad')).allowed).toBe(true);
    expect(backend.state).toBe('redis');
    expect(changes.map((change) => change.state)).toEqual(['degraded', 'redis']);
    await limiter.consume('fresh');
    expect(await redis.exists(redisKey('probe-wrongtype', 'fresh'))).toBe(1);
    await redis.del(redisKey('probe-wrongtype', 'bad'));
    await limiter.reset('k');
    await limiter.reset('fresh');
  });

  it('tells calls made while the probe is in flight to wait one probe interval', async () => {
    const closed = setup({ onError: 'fail-closed', prefix: 'probe-closed' });
    const thrown = setup({ onError: 'throw', prefix: 'probe-throw' });
    pause();
    try {
      await closed.limiter.consume('k');
      await thrown.limiter.consume('k').catch(() => undefined);
      closed.clock.advance(5_000);
      thrown.clock.advance(5_000);
      // Each probe waits on the paused Redis; the calls meanwhile get the policy's answer.
      const probes = [
        closed.limiter.consume('k'),
        thrown.limiter.consume('k').catch((error: unknown) => error),
      ];
      expect((await closed.limiter.consume('k')).retryAfterMs).toBe(5_000);
      await expect(thrown.limiter.consume('k')).rejects.toMatchObject({
        code: 'BACKEND_UNAVAILABLE',
        retryAfterMs: 5_000,
      });
      await Promise.all(probes);
    } finally {
      resume();
    }
    await closed.limiter.reset('k');
    await thrown.limiter.reset('k');
  });

  it('rejects a reset that cannot reach Redis, whatever the policy', async () => {
    const fallback = new MemoryBackend();
    const backend = new RedisBackend({ redis, timeoutMs: 100, onError: 'fail-open', fallback });
    const limiter = createRateLimiter({ limit: 2, periodMs: 60_000, prefix: 'reset', backend });
    pause();
    try {
      await expect(limiter.reset('k')).rejects.toMatchObject({ code: 'BACKEND_TIMEOUT' });
    } finally {
      resume();
    }
  });

  it('reports a refused connection as BACKEND_ERROR with its cause', async () => {
    const port = await freePort();
    const offline = new Redis({
      port,
      host: '127.0.0.1',
      lazyConnect: true,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
    offline.on('error', () => undefined);
    const backend = new RedisBackend({ redis: offline, onError: 'throw' });
    const error: unknown = await createRateLimiter({ limit: 1, periodMs: 1_000, backend })
      .consume('k')
      .catch((reason: unknown) => reason);
    expect(error).toMatchObject({ code: 'BACKEND_ERROR' });
    expect((error as Error).cause).toBeInstanceOf(Error);
    offline.disconnect();
  });

  it('keeps answering when a state listener throws, and stops calling a disposed listener', async () => {
    const { clock, backend, limiter } = setup({ onError: 'fail-open', prefix: 'listener' });
    const seen: string[] = [];
    backend.onStateChange(() => {
      throw new Error('listener bug');
    });
    const subscription = backend.onStateChange((change) => seen.push(change.state));
    pause();
    try {
      expect((await limiter.consume('k')).allowed).toBe(true);
      subscription.dispose();
    } finally {
      resume();
    }
    clock.advance(5_000);
    expect((await limiter.consume('k')).allowed).toBe(true);
    expect(seen).toEqual(['degraded']);
    await limiter.reset('k');
  });
});

describe('RedisBackend options and replies', () => {
  it('rejects bad options with INVALID_OPTION naming the option', () => {
    const make = (options: object) => () => new RedisBackend({ redis, ...options });
    expect(make({ redis: undefined })).toThrowError(
      expect.objectContaining({ code: 'INVALID_OPTION', option: 'redis' }) as Error,
    );
    expect(make({ redis: { eval: () => undefined } })).toThrowError(
      expect.objectContaining({ option: 'redis' }) as Error,
    );
    expect(make({ timeoutMs: 0 })).toThrowError(
      expect.objectContaining({ option: 'timeoutMs' }) as Error,
    );
    expect(make({ probeIntervalMs: Number.NaN })).toThrowError(
      expect.objectContaining({ option: 'probeIntervalMs' }) as Error,
    );
    expect(make({ onError: 'ignore' })).toThrowError(
      expect.objectContaining({ option: 'onError' }) as Error,
    );
  });

  it('rejects a timeoutMs that setTimeout cannot hold', () => {
    // Past 2^31 - 1 ms Node fires the timer after 1 ms, so every run would time out at once.
    expect(() => new RedisBackend({ redis, timeoutMs: 2 ** 31 })).toThrowError(
      expect.objectContaining({ code: 'INVALID_OPTION', option: 'timeoutMs' }) as Error,
    );
    expect(new RedisBackend({ redis, timeoutMs: 2 ** 31 - 1 }).state).toBe('redis');
  });

  it('treats a reply of the wrong shape as a store error', async () => {
    // A client whose script answers something else: what a proxy or a wrong server might send.
    const odd: RedisScriptClient = {
      evalsha: () => Promise.resolve('OK'),
      eval: () => Promise.resolve('OK'),
    };
    const backend = new RedisBackend({ redis: odd, onError: 'throw' });
    await expect(
      createRateLimiter({ limit: 1, periodMs: 1_000, backend }).consume('k'),
    ).rejects.toMatchObject({
      code: 'BACKEND_ERROR',
    });
    const malformed: RedisScriptClient = {
      evalsha: () => Promise.resolve([7, 0]),
      eval: () => Promise.resolve([7, 0]),
    };
    await expect(
      createRateLimiter({
        limit: 1,
        periodMs: 1_000,
        backend: new RedisBackend({ redis: malformed, onError: 'throw' }),
      }).consume('k'),
    ).rejects.toMatchObject({
      code: 'BACKEND_ERROR',
      message: expect.stringContaining('unexpected reply') as string,
    });
    const failing: RedisScriptClient = {
      evalsha: () => Promise.reject(new Error('NOSCRIPT No matching script')),
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- some clients reject with non-Errors
      eval: () => Promise.reject('not an Error'),
    };
    await expect(
      createRateLimiter({
        limit: 1,
        periodMs: 1_000,
        backend: new RedisBackend({ redis: failing, onError: 'throw' }),
      }).consume('k'),
    ).rejects.toMatchObject({ code: 'BACKEND_ERROR', message: 'Redis call failed: not an Error' });
  });

  it('times out every script run on its own deadline with one shared timer, and ignores late replies', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance', 'Date'] });
    try {
      const late: ((reply: unknown) => void)[] = [];
      // A client on which keys named "slow" never answer in time and the others answer at once.
      const client: RedisScriptClient = {
        evalsha: (_sha: string, _count: number, key?: string) =>
          key?.includes('slow') === true
            ? new Promise((resolve) => late.push(resolve))
            : Promise.resolve([1, 0]),
        eval: () => Promise.reject(new Error('eval is not expected here')),
      };
      const backend = new RedisBackend({
        redis: client,
        timeoutMs: 100,
        onError: 'throw',
        batch: false,
      });
      const limiter = createRateLimiter({
        limit: 10,
        periodMs: 1_000,
        prefix: 'shared-timer',
        backend,
      });
      const first = limiter.consume('slow-1').catch((error: unknown) => error);
      await vi.advanceTimersByTimeAsync(60);
      let secondSettled = false;
      const second = limiter.consume('slow-2').catch((error: unknown) => error);
      void second.then(() => (secondSettled = true));
      // A run sent after a stuck one answers normally; the stuck one still times out on time.
      expect((await limiter.consume('fast')).allowed).toBe(true);
      await vi.advanceTimersByTimeAsync(40);
      expect(await first).toMatchObject({ code: 'BACKEND_TIMEOUT', timeoutMs: 100 });
      await vi.advanceTimersByTimeAsync(59);
      expect(secondSettled).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(await second).toMatchObject({ code: 'BACKEND_TIMEOUT' });
      // Replies arriving after the timeout change nothing.
      for (const resolve of late) resolve([1, 0]);
      await vi.advanceTimersByTimeAsync(0);
      expect(backend.state).toBe('degraded');
    } finally {
      vi.useRealTimers();
    }
  });

  it('holds the process open only while a script run is in flight', async () => {
    const timers = (): number =>
      process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length;
    const sent = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
    let answer: ((reply: unknown) => void) | undefined;
    const client: RedisScriptClient = {
      evalsha: () => new Promise((resolve) => (answer = resolve)),
      eval: () => Promise.reject(new Error('eval is not expected here')),
    };
    const backend = new RedisBackend({ redis: client, timeoutMs: 60_000, onError: 'throw' });
    const limiter = createRateLimiter({ limit: 5, periodMs: 1_000, prefix: 'hold', backend });
    const idle = timers();
    for (const backlogUs of [0, 200_000]) {
      const pending = limiter.consume('k');
      await sent();
      expect(timers()).toBe(idle + 1);
      answer!([1, backlogUs]);
      expect((await pending).allowed).toBe(true);
      expect(timers()).toBe(idle);
    }
  });

  it('times out on node-redis too', async () => {
    const client = createClient({ socket: { port: own.port, host: '127.0.0.1' } });
    await client.connect();
    const backend = new RedisBackend({ redis: client, timeoutMs: 100, onError: 'throw' });
    pause();
    try {
      await expect(
        createRateLimiter({ limit: 1, periodMs: 1_000, backend }).consume('k'),
      ).rejects.toMatchObject({
        code: 'BACKEND_TIMEOUT',
      });
    } finally {
      resume();
      client.destroy();
    }
  });
});
