export { RedisSessionStorage } from './redis-session-storage.js';
export type { NodeRedisClient, RedisSessionStorageOptions } from './redis-session-storage.js';
