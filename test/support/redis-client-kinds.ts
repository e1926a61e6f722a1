import { Redis } from 'ioredis';
import type { RedisSessionStorageOptions } from 'nestjs-mtproto-sessions/redis';

/** How a storage reaches Redis in a test: what it is given, and how the application lets go of it once the storage is closed. */
export interface RedisClientKind {
  readonly name: string;
  connect(url: string): { options: Pick<RedisSessionStorageOptions, 'url' | 'client'>; release(): Promise<void> };
}

/** The storage on its own node-redis connection from a URL, and on an ioredis client the application owns. */
export const REDIS_CLIENT_KINDS: readonly RedisClientKind[] = [
  { name: 'node-redis, from { url }', connect: (url) => ({ options: { url }, release: async () => undefined }) },
  {
    name: 'an ioredis client the application owns',
    connect: (url) => {
      const client = new Redis(url);
      client.on('error', () => undefined);
      return { options: { client }, release: async () => client.disconnect() };
    },
  },
];
