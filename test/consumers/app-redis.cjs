// A CommonJS Redis consumer: the storage from nestjs-mtproto-sessions/redis.
require('reflect-metadata');
const checkRedis = require('./redis-check.cjs');

async function main() {
  await checkRedis({
    mode: 'CommonJS',
    redisEntry: require('nestjs-mtproto-sessions/redis'),
    otherRedisEntry: await import('nestjs-mtproto-sessions/redis'),
    pkg: require('nestjs-mtproto-sessions'),
    common: require('@nestjs/common'),
    core: require('@nestjs/core'),
    url: process.env.REDIS_URL,
    ioredis: process.env.REDIS_CLIENT === 'ioredis' ? require('ioredis') : undefined,
    resolve: require.resolve,
  });
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
