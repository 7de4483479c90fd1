// @postern/auth/redis: the Redis store (ioredis is an optional peer dependency).
export { RedisAuthStore } from './redis-store.js';
export type { RedisAuthStoreOptions } from './redis-store.js';
