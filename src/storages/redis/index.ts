export { RedisSessionStorage } from './redis-session-storage.js';
export type { IORedisClient, NodeRedisClient } from './redis-client.js';
export type { RedisSessionStorageOptions } from './redis-storage-options.js';
export { RedisKeyLayoutError } from './redis-key-layout-error.js';
export type { RedisSessionKeys } from './redis-keys.js';
export { RedisReplyError } from './redis-reply-error.js';
