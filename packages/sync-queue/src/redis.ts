// @postern/sync-queue/redis: the Redis backend (needs the optional peer dependency ioredis).
export { RedisBackend } from './redis-backend.js';
export type { RedisBackendOptions } from './redis-backend.js';
