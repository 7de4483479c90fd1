// The README checker compiles this file outside the package's tsconfig: point it at the `*.lua` typing.
// eslint-disable-next-line @typescript-eslint/triple-slash-reference -- an ambient module cannot be imported
/// <reference path="./lua.d.ts" />
/**
 * `RedisBreakerStore`: shares circuit breaker state between processes through Redis (or Redis
 * Cluster). Import from `@postern/resilience/redis`; pass your own ioredis client (an optional peer).
 */
import type {
  BreakerStateStore,
  ProbeClaim,
  RedisCommandClient,
  SharedBreakerState,
} from './ports.js';

export type { RedisCommandClient } from './ports.js';
import { InvalidOptionError } from './errors.js';
import claimProbeScript from './lua/breaker-claim-probe-1.lua';
import loadScript from './lua/breaker-load-1.lua';
import openScript from './lua/breaker-open-1.lua';
import probeSucceededScript from './lua/breaker-probe-succeeded-1.lua';
import releaseProbeScript from './lua/breaker-release-probe-1.lua';
import resetScript from './lua/breaker-reset-1.lua';
import { checkNumber } from './validate.js';

/** Options of `RedisBreakerStore`. */
export interface RedisBreakerStoreOptions {
  /** An ioredis `Redis` or `Cluster` client; the store never connects or quits it. Required. */
  redis: RedisCommandClient;
  /** Prefix of every key; the breaker key goes in a `{hash tag}` after it. Default: `'postern:breaker:'`. */
  prefix?: string;
  /** Idle breaker state expires after this long, in ms (refreshed on every write). Default: 604_800_000 (7 days). */
  ttlMs?: number;
}

type Command = (key: string, ...args: Array<string | number>) => Promise<unknown>;

/** FNV-1a: names each script by its text, so two package versions never run each other's scripts. */
function scriptName(base: string, lua: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < lua.length; i++) {
    hash ^= lua.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return `postern${base}_${hash.toString(36)}`;
}

const SCRIPTS = {
  load: { name: scriptName('BreakerLoad', loadScript), lua: loadScript },
  open: { name: scriptName('BreakerOpen', openScript), lua: openScript },
  claimProbe: { name: scriptName('BreakerClaimProbe', claimProbeScript), lua: claimProbeScript },
  probeSucceeded: {
    name: scriptName('BreakerProbeSucceeded', probeSucceededScript),
    lua: probeSucceededScript,
  },
  releaseProbe: {
    name: scriptName('BreakerReleaseProbe', releaseProbeScript),
    lua: releaseProbeScript,
  },
  reset: { name: scriptName('BreakerReset', resetScript), lua: resetScript },
} as const;

function parseState(reply: unknown, offset = 0): SharedBreakerState {
  if (!Array.isArray(reply)) throw new TypeError('Unexpected reply from the breaker script');
  const values = reply as unknown[];
  const state = String(values[offset]);
  if (state !== 'closed' && state !== 'open' && state !== 'half-open') {
    throw new TypeError(`Unexpected breaker state in Redis: ${state}`);
  }
  return {
    state,
    generation: Number(values[offset + 1]),
    openedAt: Number(values[offset + 2]),
    probeUntil: Number(values[offset + 3]),
    probeSuccesses: Number(values[offset + 4]),
    now: Number(values[offset + 5]),
  };
}

/**
 * Breaker state in Redis: one hash per circuit, each change one Lua script, safe on Redis Cluster.
 * Every time is Redis server time (`TIME`), so processes with skewed clocks agree; Redis 5 or later.
 */
export class RedisBreakerStore implements BreakerStateStore {
  private readonly commands: Record<keyof typeof SCRIPTS, Command>;
  private readonly prefix: string;
  private readonly ttlMs: number;

  constructor(options: RedisBreakerStoreOptions) {
    const redis = options.redis;
    if (typeof redis !== 'object' || redis === null || typeof redis.defineCommand !== 'function') {
      throw new InvalidOptionError('redis', 'must be an ioredis client or cluster', redis);
    }
    this.prefix = options.prefix ?? 'postern:breaker:';
    if (typeof this.prefix !== 'string')
      throw new InvalidOptionError('prefix', 'must be a string', this.prefix);
    this.ttlMs = checkNumber('ttlMs', options.ttlMs ?? 604_800_000, { min: 1, integer: true });
    const client = redis as unknown as Record<string, Command | undefined>;
    const bind = (script: { name: string; lua: string }): Command => {
      if (typeof client[script.name] !== 'function')
        redis.defineCommand(script.name, { numberOfKeys: 1, lua: script.lua });
      const command = client[script.name]!;
      return (key, ...args) => command.call(redis, key, ...args);
    };
    this.commands = {
      load: bind(SCRIPTS.load),
      open: bind(SCRIPTS.open),
      claimProbe: bind(SCRIPTS.claimProbe),
      probeSucceeded: bind(SCRIPTS.probeSucceeded),
      releaseProbe: bind(SCRIPTS.releaseProbe),
      reset: bind(SCRIPTS.reset),
    };
  }

  /** The Redis key of a breaker key: every key of one circuit shares its `{hash tag}`. */
  redisKey(key: string): string {
    return `${this.prefix}{${key}}`;
  }

  async load(key: string): Promise<SharedBreakerState> {
    return parseState(await this.commands.load(this.redisKey(key)));
  }

  async open(key: string, expectedGeneration: number): Promise<SharedBreakerState> {
    return parseState(await this.commands.open(this.redisKey(key), expectedGeneration, this.ttlMs));
  }

  async claimProbe(key: string, halfOpenAfterMs: number, leaseMs: number): Promise<ProbeClaim> {
    const reply = await this.commands.claimProbe(
      this.redisKey(key),
      Math.ceil(halfOpenAfterMs),
      Math.ceil(leaseMs),
      this.ttlMs,
    );
    return { claimed: Array.isArray(reply) && Number(reply[0]) === 1, state: parseState(reply, 1) };
  }

  async probeSucceeded(
    key: string,
    expectedGeneration: number,
    successesToClose: number,
  ): Promise<SharedBreakerState> {
    return parseState(
      await this.commands.probeSucceeded(
        this.redisKey(key),
        expectedGeneration,
        successesToClose,
        this.ttlMs,
      ),
    );
  }

  async releaseProbe(
    key: string,
    expectedGeneration: number,
    probeUntil: number,
  ): Promise<SharedBreakerState> {
    return parseState(
      await this.commands.releaseProbe(
        this.redisKey(key),
        expectedGeneration,
        probeUntil,
        this.ttlMs,
      ),
    );
  }

  async reset(key: string): Promise<SharedBreakerState> {
    return parseState(await this.commands.reset(this.redisKey(key), this.ttlMs));
  }
}
