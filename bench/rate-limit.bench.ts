/**
 * @postern/rate-limit against rate-limiter-flexible 11.4.0 in one run: `consume` calls/s on
 * 1,000 keys, for both Redis backends (same Redis, one ioredis client each) at concurrency 1
 * and 64, and for both in-memory limiters. At concurrency 1 a bare ioredis `PING` on a third
 * connection runs in the same rounds: the round-trip floor, which bounds what any limiter making
 * one Redis round trip per call can reach against rate-limiter-flexible, and so does an `EVALSHA` of
 * a script that only returns `{1, 0}` (same key and argument count as ours): the floor of any
 * limiter that runs one Lua script per call, as an exact limiter on Redis server time must.
 * Limits are high enough that every call is allowed,
 * so both libraries run their charging path. Build the package first
 * (`cd packages/rate-limit && npx tsup`): `@postern/rate-limit` resolves to its dist.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis } from 'rate-limiter-flexible';
import { createRateLimiter } from '@postern/rate-limit';
import { RedisBackend } from '@postern/rate-limit/redis';
import type { BenchResult } from './harness.ts';
import { progress, ratio, report, suite } from './harness.ts';

const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const KEY_COUNT = 1_000;
const keys = Array.from({ length: KEY_COUNT }, (_, index) => `user-${index}`);
// 10 million per hour: no call is ever denied during the run, in either library.
const LIMIT = 10_000_000;
const PERIOD_SECONDS = 3_600;
const run = randomUUID().slice(0, 8);
const meta = { keys: KEY_COUNT, limit: `${LIMIT}/${PERIOD_SECONDS}s` };

function cycler(consume: (key: string) => Promise<unknown>): () => Promise<unknown> {
  let next = 0;
  return () => {
    const key = keys[next]!;
    next = next === KEY_COUNT - 1 ? 0 : next + 1;
    return consume(key);
  };
}

const ourRedisClient = new Redis(REDIS_URL);
const theirRedisClient = new Redis(REDIS_URL);
const floorRedisClient = new Redis(REDIS_URL);
const scriptFloorClient = new Redis(REDIS_URL);
// Does nothing but answer the shape our script answers: what running any script costs.
const EMPTY_SCRIPT_SHA = (await scriptFloorClient.script('LOAD', 'return {1, 0}')) as string;
const oursRedis = createRateLimiter({
  limit: LIMIT,
  periodMs: PERIOD_SECONDS * 1000,
  prefix: `bench-rl-ours-${run}`,
  backend: new RedisBackend({ redis: ourRedisClient }),
});
const theirsRedis = new RateLimiterRedis({
  storeClient: theirRedisClient,
  points: LIMIT,
  duration: PERIOD_SECONDS,
  keyPrefix: `bench-rl-theirs-${run}`,
});
const oursMemory = createRateLimiter({
  limit: LIMIT,
  periodMs: PERIOD_SECONDS * 1000,
  prefix: 'bench',
});
const theirsMemory = new RateLimiterMemory({ points: LIMIT, duration: PERIOD_SECONDS });

const results: BenchResult[] = [];
for (const concurrency of [1, 64]) {
  progress(`redis, concurrency ${concurrency}`);
  results.push(
    ...(await suite(
      [
        {
          name: `@postern/rate-limit redis c=${concurrency}`,
          fn: cycler((key) => oursRedis.consume(key)),
          meta: { ...meta, backend: 'redis' },
        },
        {
          name: `rate-limiter-flexible redis c=${concurrency}`,
          fn: cycler((key) => theirsRedis.consume(key)),
          meta: { ...meta, backend: 'redis', version: '11.4.0' },
        },
        ...(concurrency === 1
          ? [
              {
                name: 'bare ioredis PING c=1',
                fn: () => floorRedisClient.ping(),
                meta: { backend: 'redis', note: 'round-trip floor, not a limiter' },
              },
              {
                name: 'bare ioredis EVALSHA of an empty script c=1',
                fn: cycler((key) =>
                  scriptFloorClient.evalsha(
                    EMPTY_SCRIPT_SHA,
                    1,
                    `bench-rl-floor-${run}:{${key}}`,
                    '1',
                    '1',
                    '360',
                    '3600000000',
                  ),
                ),
                meta: { backend: 'redis', note: 'script-run floor, not a limiter' },
              },
            ]
          : []),
      ],
      // Short interleaved rounds (100 ms each): the machine's load drifts, and a drift then hits
      // both contenders of a round alike instead of deciding a whole 500 ms round.
      { concurrency, durationMs: 4_500, warmupMs: 500, rounds: 45 },
    )),
  );
}
progress('memory, concurrency 1');
results.push(
  ...(await suite(
    [
      {
        name: '@postern/rate-limit memory',
        fn: cycler((key) => oursMemory.consume(key)),
        meta: { ...meta, backend: 'memory' },
      },
      {
        name: 'rate-limiter-flexible memory',
        fn: cycler((key) => theirsMemory.consume(key)),
        meta: { ...meta, backend: 'memory', version: '11.4.0' },
      },
    ],
    { durationMs: 3_000, warmupMs: 500 },
  )),
);

// Leave nothing behind on the shared Redis.
for (const prefix of [`bench-rl-ours-${run}`, `bench-rl-theirs-${run}`]) {
  let cursor = '0';
  do {
    const [nextCursor, found] = await ourRedisClient.scan(
      cursor,
      'MATCH',
      `${prefix}*`,
      'COUNT',
      1000,
    );
    if (found.length > 0) await ourRedisClient.del(...found);
    cursor = nextCursor;
  } while (cursor !== '0');
}
await Promise.all(
  [ourRedisClient, theirRedisClient, floorRedisClient, scriptFloorClient].map((client) =>
    client.quit(),
  ),
);

const byName = (name: string): BenchResult => results.find((result) => result.name === name)!;
report('@postern/rate-limit vs rate-limiter-flexible 11.4.0: consume() on 1,000 keys', results, {
  'postern/rlf redis c=1': ratio(
    byName('@postern/rate-limit redis c=1'),
    byName('rate-limiter-flexible redis c=1'),
  ),
  // The most any limiter with one Redis round trip per call could reach at concurrency 1.
  'floor/rlf redis c=1 (ceiling for one round trip)': ratio(
    byName('bare ioredis PING c=1'),
    byName('rate-limiter-flexible redis c=1'),
  ),
  // The most any limiter running one Lua script per call could reach at concurrency 1.
  'empty script/rlf redis c=1 (ceiling for one script run)': ratio(
    byName('bare ioredis EVALSHA of an empty script c=1'),
    byName('rate-limiter-flexible redis c=1'),
  ),
  'postern/rlf redis c=64': ratio(
    byName('@postern/rate-limit redis c=64'),
    byName('rate-limiter-flexible redis c=64'),
  ),
  'postern/rlf memory': ratio(
    byName('@postern/rate-limit memory'),
    byName('rate-limiter-flexible memory'),
  ),
});
