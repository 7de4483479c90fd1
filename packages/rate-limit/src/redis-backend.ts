// eslint-disable-next-line @typescript-eslint/triple-slash-reference -- keeps the *.lua declaration in view of compilations that list files (the README check)
/// <reference path="./lua.d.ts" />
import { createHash } from 'node:crypto';
import type { BackendDecision, BackendMode, BackendRequest, RateLimitBackend } from './backend.js';
import type {
  Clock,
  IoredisScriptClient,
  NodeRedisScriptClient,
  RedisScriptClient,
} from './ports.js';
import { RateLimitError, assertPositive, rejectWith } from './errors.js';
import { MemoryBackend } from './memory-backend.js';
import script from './lua/gcra.lua';

/** What a `RedisBackend` does when Redis fails or times out (never on an ordinary denial). */
export type RedisErrorPolicy = 'fallback' | 'fail-open' | 'fail-closed' | 'throw';

/** Options of `new RedisBackend()`. */
export interface RedisBackendOptions {
  /** An ioredis `Redis` or `Cluster`, or a node-redis client. Required. */
  readonly redis: RedisScriptClient;
  /** Longest wait for one Redis call, in ms, before it counts as failed; at most 2^31 - 1. Default: 500. */
  readonly timeoutMs?: number;
  /**
   * On a Redis error or timeout: `'fallback'` asks `fallback` (a local memory limiter),
   * `'fail-open'` allows the call, `'fail-closed'` denies it, `'throw'` rejects with the
   * `RateLimitError`. Default: `'fallback'`.
   */
  readonly onError?: RedisErrorPolicy;
  /** The backend used while Redis is failing with `onError: 'fallback'`. Default: `new MemoryBackend()`. */
  readonly fallback?: RateLimitBackend;
  /**
   * After a failure, calls skip Redis for this long, in ms; then one call probes Redis and,
   * if it answers (even that the call's own key is bad), all calls return to it. Default: 1_000.
   */
  readonly probeIntervalMs?: number;
  /** Source of time for the probe schedule, in ms. Default: `Date`. Limiter time is Redis's own. */
  readonly clock?: Clock;
  /**
   * Sends the calls made in one tick of the event loop as one script run (each call still
   * checked and charged atomically on its own), which multiplies throughput under load.
   * Ignored (off) on a Redis Cluster, where each call runs alone on its key's slot.
   * Default: true.
   */
  readonly batch?: boolean;
}

/** Whether the backend is using Redis (`'redis'`) or its error policy (`'degraded'`). */
export type RedisBackendState = 'redis' | 'degraded';

/** Passed to `onStateChange` listeners. */
export interface RedisBackendStateChange {
  /** The state entered. */
  readonly state: RedisBackendState;
  /** The failure that caused `'degraded'`. */
  readonly error?: RateLimitError;
}

/** Returned by event subscriptions; `dispose()` removes the listener. */
export interface Disposable {
  dispose(): void;
}

const SCRIPT_SHA = createHash('sha1').update(script).digest('hex');
const MODE: Record<CallMode, string> = { peek: '0', consume: '1', reset: '2' };
const DEFAULTS = {
  timeoutMs: 500,
  onError: 'fallback' as RedisErrorPolicy,
  probeIntervalMs: 1_000,
  clock: Date as Clock,
  batch: true,
};
const POLICIES: readonly RedisErrorPolicy[] = ['fallback', 'fail-open', 'fail-closed', 'throw'];
const ESCAPED = /[%}]/g;
// Node fires a timer of more than 2^31 - 1 ms after 1 ms (with a TimeoutOverflowWarning).
const MAX_TIMEOUT_MS = 2_147_483_647;
// Keeps one script run short, so a burst of calls cannot stall Redis for long.
const MAX_BATCH_CALLS = 256;
// From this many calls in one tick, they go as two script runs back to back: Redis runs the
// second while this process answers the first, instead of one side idling while the other works
// (+27% at 16 concurrent calls, +34% at 64, measured in bench/rate-limit.bench.ts).
const MIN_SPLIT_CALLS = 16;

/** What one queued call asks of the script: an `apply` mode, or deleting its keys. */
type CallMode = BackendMode | 'reset';

/** One `apply` waiting for its script run. */
interface PendingApply {
  readonly mode: BackendMode;
  readonly requests: readonly BackendRequest[];
  readonly resolve: (decision: BackendDecision | Promise<BackendDecision>) => void;
}

/** One `reset` waiting for its script run. */
interface PendingReset {
  readonly mode: 'reset';
  readonly requests: readonly Pick<BackendRequest, 'prefix' | 'key'>[];
  readonly resolve: () => void;
  readonly reject: (error: RateLimitError) => void;
}

/** A call waiting for its script run; resets share the queue so Redis sees calls in call order. */
type PendingCall = PendingApply | PendingReset;

/**
 * The Redis key of one subject. Every limiter's key of one subject shares the `{hash tag}`
 * (the escaped subject), so a combined call stays on one Cluster slot. `%` and `}` are escaped
 * so the tag always spans the whole subject and two subjects never share a key.
 */
export function redisKey(prefix: string, key: string): string {
  const tag =
    key.includes('}') || key.includes('%')
      ? key.replace(ESCAPED, (char) => (char === '%' ? '%25' : '%7D'))
      : key;
  return `${prefix}:{${tag}}`;
}

function isNodeRedis(client: RedisScriptClient): client is NodeRedisScriptClient {
  return typeof (client as Partial<NodeRedisScriptClient>).evalSha === 'function';
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.includes('NOSCRIPT');
}

/**
 * Limiter state in Redis, shared by every process: one Lua script per call (atomic), Redis
 * server time, keys that expire when idle, one hash slot per call (Redis Cluster works).
 */
export class RedisBackend implements RateLimitBackend {
  readonly #redis: RedisScriptClient;
  readonly #nodeRedis: boolean;
  readonly #timeoutMs: number;
  readonly #onError: RedisErrorPolicy;
  readonly #fallback: RateLimitBackend;
  readonly #probeIntervalMs: number;
  readonly #clock: Clock;
  readonly #listeners = new Set<(change: RedisBackendStateChange) => void>();
  #state: RedisBackendState = 'redis';
  #probeAtMs = 0;
  #probing = false;
  #lastError: RateLimitError | undefined;
  readonly #batch: boolean;
  #queue: PendingCall[] = [];
  #flushScheduled = false;
  // Script runs in flight, oldest first from #head, watched by one shared timeout timer.
  readonly #flights: Flight[] = [];
  #head = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  // Whether the timer holds the process open: only while some run is in flight, as a timer per call would.
  #timerHeld = false;
  #textValueA = Number.NaN;
  #textA = '';
  #textValueB = Number.NaN;
  #textB = '';

  constructor(options: RedisBackendOptions) {
    const settings = { ...DEFAULTS, ...options };
    const client = settings.redis as
      Partial<IoredisScriptClient & NodeRedisScriptClient> | undefined;
    if (
      typeof client !== 'object' ||
      client === null ||
      typeof client.eval !== 'function' ||
      (typeof client.evalsha !== 'function' && typeof client.evalSha !== 'function')
    ) {
      throw new RateLimitError(
        'INVALID_OPTION',
        'redis must be an ioredis client or Cluster, or a node-redis client',
        {
          option: 'redis',
        },
      );
    }
    assertPositive(settings.timeoutMs, 'timeoutMs');
    if (settings.timeoutMs > MAX_TIMEOUT_MS) {
      throw new RateLimitError(
        'INVALID_OPTION',
        `timeoutMs must be at most ${MAX_TIMEOUT_MS} (about 24.8 days), got ${settings.timeoutMs}`,
        { option: 'timeoutMs' },
      );
    }
    assertPositive(settings.probeIntervalMs, 'probeIntervalMs');
    if (!POLICIES.includes(settings.onError)) {
      throw new RateLimitError('INVALID_OPTION', `onError must be one of ${POLICIES.join(', ')}`, {
        option: 'onError',
      });
    }
    this.#redis = settings.redis;
    this.#nodeRedis = isNodeRedis(settings.redis);
    this.#timeoutMs = settings.timeoutMs;
    this.#onError = settings.onError;
    this.#fallback = settings.fallback ?? new MemoryBackend();
    this.#probeIntervalMs = settings.probeIntervalMs;
    this.#clock = settings.clock;
    const cluster = client as { isCluster?: unknown; getSlotRandomNode?: unknown };
    this.#batch =
      settings.batch &&
      cluster.isCluster !== true &&
      typeof cluster.getSlotRandomNode !== 'function';
  }

  /** `'redis'` while Redis answers, `'degraded'` while the error policy applies. */
  get state(): RedisBackendState {
    return this.#state;
  }

  /** Calls `listener` on every switch between Redis and the error policy. */
  onStateChange(listener: (change: RedisBackendStateChange) => void): Disposable {
    this.#listeners.add(listener);
    return { dispose: () => this.#listeners.delete(listener) };
  }

  /** Runs the GCRA script for every request at once (atomic on Redis). */
  apply(requests: readonly BackendRequest[], mode: BackendMode): Promise<BackendDecision> {
    if (this.#state === 'degraded') {
      if (this.#probing || this.#clock.now() < this.#probeAtMs)
        return this.#degraded(requests, mode, undefined);
      this.#probing = true;
    }
    return new Promise((resolve) => this.#enqueue({ mode, requests, resolve }));
  }

  /** Sends a call with the others of this tick (or at once when not batching), in call order. */
  #enqueue(call: PendingCall): void {
    if (!this.#batch) {
      this.#send([call]);
      return;
    }
    this.#queue.push(call);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      // nextTick runs once the current run of promise callbacks has drained, so every
      // call made in response to one reply joins the same batch.
      process.nextTick(this.#flush);
    }
  }

  readonly #flush = (): void => {
    this.#flushScheduled = false;
    const queue = this.#queue;
    this.#queue = [];
    const count = queue.length;
    if (count < MIN_SPLIT_CALLS) {
      this.#send(queue);
      return;
    }
    const size = Math.min(MAX_BATCH_CALLS, Math.ceil(count / 2));
    for (let start = 0; start < count; start += size) this.#send(queue.slice(start, start + size));
  };

  #send(calls: readonly PendingCall[]): void {
    const first = calls[0]!;
    if (calls.length === 1 && first.mode !== 'reset' && first.requests.length === 1) {
      // One call on one key, the common case: no key or argument arrays on the ioredis path.
      const request = first.requests[0]!;
      const flight = new Flight(performance.now() + this.#timeoutMs, calls, undefined, undefined);
      flight.key = redisKey(request.prefix, request.key);
      flight.mode = MODE[first.mode];
      flight.increment = this.#text(request.incrementUs);
      flight.tolerance = this.#text(request.toleranceUs);
      this.#launch(flight);
      return;
    }
    const keys: string[] = [];
    const args: string[] = [];
    for (const call of calls) {
      args.push(MODE[call.mode], String(call.requests.length));
      for (const request of call.requests) keys.push(redisKey(request.prefix, request.key));
      if (call.mode === 'reset') continue;
      for (const request of call.requests)
        args.push(this.#text(request.incrementUs), this.#text(request.toleranceUs));
    }
    this.#launch(new Flight(performance.now() + this.#timeoutMs, calls, keys, args));
  }

  /** The decimal text of a whole number, remembering the last two (a limiter's usual increment and tolerance). */
  #text(value: number): string {
    if (value === this.#textValueA) return this.#textA;
    if (value === this.#textValueB) return this.#textB;
    const text = String(value);
    this.#textValueB = this.#textValueA;
    this.#textB = this.#textA;
    this.#textValueA = value;
    this.#textA = text;
    return text;
  }

  /** Handles the reply of a batch run: one decision per call. */
  #decide(calls: readonly PendingCall[], reply: unknown): void {
    if (!Array.isArray(reply)) {
      this.#failAll(
        calls,
        new RateLimitError(
          'BACKEND_ERROR',
          'Redis returned an unexpected reply to the rate-limit script',
        ),
      );
      return;
    }
    // Redis answered, whatever it said about each call: a probe succeeded.
    this.#probing = false;
    if (this.#state === 'degraded') this.#enter('redis', undefined);
    let offset = 0;
    for (const call of calls) {
      if (call.mode === 'reset') {
        this.#answerReset(call, reply[offset]);
        offset += 1;
        continue;
      }
      this.#answer(call, reply, offset);
      offset += call.requests.length + 1;
    }
  }

  /** Resolves one `apply` from its part of a batch reply, which starts at `offset`. */
  #answer(call: PendingApply, reply: readonly unknown[], offset: number): void {
    const count = call.requests.length;
    const allowed = replyInteger(reply[offset]);
    if (allowed !== 0 && allowed !== 1) {
      const message =
        allowed === -1
          ? 'a rate-limit key in Redis holds another type or a value that is not a number'
          : 'Redis returned an unexpected reply to the rate-limit script';
      // A bad key is that call's problem, not an outage: the policy answers it, Redis stays in use.
      call.resolve(
        this.#degraded(call.requests, call.mode, new RateLimitError('BACKEND_ERROR', message)),
      );
      return;
    }
    const backlogUs = new Array<number>(count);
    for (let index = 0; index < count; index += 1) {
      const backlog = replyInteger(reply[offset + 1 + index]);
      if (!Number.isSafeInteger(backlog) || backlog < 0) {
        // A missing or malformed backlog would turn into NaN in `remaining` and the headers.
        const error = new RateLimitError(
          'BACKEND_ERROR',
          'Redis returned an unexpected reply to the rate-limit script',
        );
        call.resolve(this.#degraded(call.requests, call.mode, error));
        return;
      }
      backlogUs[index] = backlog;
    }
    call.resolve({ allowed: allowed === 1, backlogUs });
  }

  /** Settles one `reset` from its part of a batch reply: the number of keys deleted. */
  #answerReset(call: PendingReset, deleted: unknown): void {
    if (Number.isInteger(replyInteger(deleted))) call.resolve();
    else
      call.reject(
        new RateLimitError(
          'BACKEND_ERROR',
          'Redis returned an unexpected reply to the rate-limit script',
        ),
      );
  }

  #failAll(calls: readonly PendingCall[], error: unknown): void {
    for (const call of calls) {
      // A failed reset rejects whatever the policy, and is no reason to skip Redis.
      if (call.mode === 'reset') call.reject(asBackendError(error));
      else call.resolve(this.#fail(error, call.requests, call.mode));
    }
  }

  #fail(
    error: unknown,
    requests: readonly BackendRequest[],
    mode: BackendMode,
  ): Promise<BackendDecision> {
    this.#probing = false;
    const failure = asBackendError(error);
    this.#probeAtMs = this.#clock.now() + this.#probeIntervalMs;
    this.#lastError = failure;
    if (this.#state !== 'degraded') this.#enter('degraded', failure);
    return this.#degraded(requests, mode, failure);
  }

  /**
   * Deletes the keys in Redis and in the fallback. Rejects with a `RateLimitError` when Redis
   * fails, whatever `onError` says, since a reset that did not reach Redis did not happen.
   * Joins the calls of its tick, so Redis applies it after the calls made before it.
   */
  reset(keys: readonly Pick<BackendRequest, 'prefix' | 'key'>[]): Promise<void> {
    const inRedis = new Promise<void>((resolve, reject) =>
      this.#enqueue({ mode: 'reset', requests: keys, resolve, reject }),
    );
    let inFallback: void | Promise<void>;
    try {
      inFallback = this.#fallback.reset(keys);
    } catch (error) {
      inFallback = rejectWith(error);
    }
    return Promise.all([inFallback, inRedis]).then(() => undefined);
  }

  #enter(state: RedisBackendState, error: RateLimitError | undefined): void {
    this.#state = state;
    const change: RedisBackendStateChange = error === undefined ? { state } : { state, error };
    for (const listener of [...this.#listeners]) {
      try {
        listener(change);
      } catch {
        // A failing listener must not change the limiter's answer.
      }
    }
  }

  async #degraded(
    requests: readonly BackendRequest[],
    mode: BackendMode,
    failure: RateLimitError | undefined,
  ): Promise<BackendDecision> {
    const untilProbeMs = this.#probeAtMs - this.#clock.now();
    // With a probe in flight, or a bad key while Redis is in use, the next probe is at most an interval away.
    const waitMs = untilProbeMs > 0 ? untilProbeMs : this.#probeIntervalMs;
    switch (this.#onError) {
      case 'fallback':
        return this.#fallback.apply(requests, mode);
      case 'fail-open':
        return { allowed: true, backlogUs: requests.map(() => 0) };
      case 'fail-closed':
        return {
          allowed: false,
          backlogUs: requests.map((request) => request.toleranceUs),
          retryAfterUs: Math.max(1, Math.ceil(waitMs)) * 1000,
        };
      case 'throw':
        throw (
          failure ??
          new RateLimitError(
            'BACKEND_UNAVAILABLE',
            'Redis failed recently; it is probed again after probeIntervalMs',
            {
              retryAfterMs: Math.ceil(waitMs),
              cause: this.#lastError,
            },
          )
        );
    }
  }

  /**
   * Runs the script of a flight once (by SHA, by text after NOSCRIPT) and settles it exactly
   * once: with the reply, the error, or a `BACKEND_TIMEOUT` after `timeoutMs`. No timer per run:
   * one shared timer watches the oldest unsettled flight (this is the per-call hot path).
   */
  #launch(flight: Flight): void {
    this.#flights.push(flight);
    if (this.#timer === undefined) this.#arm(this.#timeoutMs);
    else if (!this.#timerHeld) this.#hold(true);
    this.#evaluate(flight, true).then(
      (reply) => this.#settle(flight, reply),
      (error: unknown) => this.#reject(flight, error),
    );
  }

  #settle(flight: Flight, reply: unknown): void {
    if (flight.settled) return;
    flight.settled = true;
    this.#release();
    this.#decide(flight.calls, reply);
  }

  #reject(flight: Flight, error: unknown): void {
    if (flight.settled) return;
    if (!flight.reloaded && isNoScript(error)) {
      flight.reloaded = true;
      this.#evaluate(flight, false).then(
        (reply) => this.#settle(flight, reply),
        (retryError: unknown) => this.#reject(flight, retryError),
      );
      return;
    }
    flight.settled = true;
    this.#release();
    this.#failAll(flight.calls, error);
  }

  /** Drops settled flights from the front of the queue, so it stays as short as what is in flight. */
  #release(): void {
    const flights = this.#flights;
    let head = this.#head;
    while (head < flights.length && flights[head]!.settled) head += 1;
    if (head === flights.length) {
      // pop() is cheaper than writing length when one or two runs are out (the usual case).
      if (head <= 4) while (flights.length > 0) flights.pop();
      else flights.length = 0;
      head = 0;
      // Nothing in flight: the armed timer stays (re-arming per call costs more) but lets the process exit.
      if (this.#timerHeld) this.#hold(false);
    } else if (head >= 1024) {
      flights.splice(0, head);
      head = 0;
    }
    this.#head = head;
  }

  #arm(delayMs: number): void {
    this.#timer = setTimeout(this.#sweep, delayMs);
    this.#timerHeld = true;
  }

  #hold(held: boolean): void {
    this.#timerHeld = held;
    const timer = this.#timer as { ref?: () => void; unref?: () => void } | undefined;
    // Node timers can be (un)referenced; other runtimes' numeric timer ids cannot, nor need to be.
    if (typeof timer === 'object') {
      if (held) timer.ref?.();
      else timer.unref?.();
    }
  }

  /** Fails every flight past its deadline, then waits for the oldest one still in flight. */
  readonly #sweep = (): void => {
    this.#timer = undefined;
    this.#timerHeld = false;
    const now = performance.now();
    const flights = this.#flights;
    const timedOut: Flight[] = [];
    for (let index = this.#head; index < flights.length; index += 1) {
      const flight = flights[index]!;
      if (flight.settled) continue;
      // Deadlines grow in send order, so the first one still ahead ends the sweep.
      if (flight.deadline > now) break;
      flight.settled = true;
      timedOut.push(flight);
    }
    this.#release();
    for (const flight of timedOut) {
      this.#failAll(
        flight.calls,
        new RateLimitError('BACKEND_TIMEOUT', `Redis did not answer within ${this.#timeoutMs} ms`, {
          timeoutMs: this.#timeoutMs,
        }),
      );
    }
    const oldest = this.#flights[this.#head];
    if (oldest !== undefined && this.#timer === undefined)
      this.#arm(Math.max(1, Math.ceil(oldest.deadline - performance.now())));
  };

  #evaluate(flight: Flight, bySha: boolean): Promise<unknown> {
    const { key } = flight;
    if (this.#nodeRedis) {
      const client = this.#redis as NodeRedisScriptClient;
      const options =
        key === undefined
          ? { keys: flight.keys!, arguments: flight.args! }
          : { keys: [key], arguments: [flight.mode, '1', flight.increment, flight.tolerance] };
      return bySha ? client.evalSha(SCRIPT_SHA, options) : client.eval(script, options);
    }
    const client = this.#redis as IoredisScriptClient;
    if (key !== undefined) {
      return bySha
        ? client.evalsha(SCRIPT_SHA, 1, key, flight.mode, '1', flight.increment, flight.tolerance)
        : client.eval(script, 1, key, flight.mode, '1', flight.increment, flight.tolerance);
    }
    const keys = flight.keys!;
    return bySha
      ? client.evalsha(SCRIPT_SHA, keys.length, ...keys, ...flight.args!)
      : client.eval(script, keys.length, ...keys, ...flight.args!);
  }
}

/** One script run in flight. */
class Flight {
  settled = false;
  reloaded = false;
  /** The single-key fast path: its key and arguments (then `keys` and `args` are unset). */
  key: string | undefined = undefined;
  mode = '';
  increment = '';
  tolerance = '';

  constructor(
    /** When it times out, on the `performance.now()` scale. */
    readonly deadline: number,
    /** The calls it answers, in call order. */
    readonly calls: readonly PendingCall[],
    readonly keys: string[] | undefined,
    readonly args: string[] | undefined,
  ) {}
}

/** An integer reply as a number: clients give integers as numbers, or as strings (ioredis `stringNumbers`). */
function replyInteger(value: unknown): number {
  if (typeof value === 'number') return value;
  return typeof value === 'string' && value !== '' ? Number(value) : Number.NaN;
}

function asBackendError(error: unknown): RateLimitError {
  if (RateLimitError.isInstance(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new RateLimitError('BACKEND_ERROR', `Redis call failed: ${message}`, { cause: error });
}
