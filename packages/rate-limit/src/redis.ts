// The public surface of @postern/rate-limit/redis: the Redis backend (ioredis or node-redis).
export { RedisBackend, redisKey } from './redis-backend.js';
export type {
  Disposable,
  IoredisScriptClient,
  NodeRedisScriptClient,
  RedisBackendOptions,
  RedisBackendState,
  RedisBackendStateChange,
  RedisErrorPolicy,
  RedisScriptClient,
} from './redis-backend.js';
