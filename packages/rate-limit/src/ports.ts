// The ports this package consumes: structural types that other libraries' objects satisfy.

/** A source of the current time in ms since the epoch (fractions allowed). `Date` satisfies it. */
export interface Clock {
  /** The current time, in ms. */
  now(): number;
}

/** The part of an ioredis client or Cluster this backend uses. */
export interface IoredisScriptClient {
  evalsha(sha: string, numKeys: number, ...keysAndArgs: string[]): Promise<unknown>;
  eval(script: string, numKeys: number, ...keysAndArgs: string[]): Promise<unknown>;
}

/** The part of a node-redis (v4/v5) client this backend uses. */
export interface NodeRedisScriptClient {
  evalSha(sha: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
}

/** Any client with `eval`/`evalsha`: ioredis `Redis` or `Cluster`, or node-redis. */
export type RedisScriptClient = IoredisScriptClient | NodeRedisScriptClient;
