// The public surface of @postern/rate-limit/redis: the Redis backend (ioredis or node-redis).
export { RedisBackend, redisKey } from './redis-backend.js';
export type {
  Disposable,
  RedisBackendOptions,
  RedisBackendState,
  RedisBackendStateChange,
  RedisErrorPolicy,
} from './redis-backend.js';
export type { IoredisScriptClient, NodeRedisScriptClient, RedisScriptClient } from './ports.js';
