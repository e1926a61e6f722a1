// An ES module Redis consumer: the storage from nestjs-mtproto-sessions/redis.
import 'reflect-metadata';
import { createRequire } from 'node:module';
import * as common from '@nestjs/common';
import * as core from '@nestjs/core';
import * as pkg from 'nestjs-mtproto-sessions';
import * as redisEntry from 'nestjs-mtproto-sessions/redis';
import checkRedis from './redis-check.cjs';

const require = createRequire(import.meta.url);

await checkRedis({
  mode: 'ESM',
  redisEntry,
  otherRedisEntry: require('nestjs-mtproto-sessions/redis'),
  pkg,
  common,
  core,
  url: process.env.REDIS_URL,
  ioredis: process.env.REDIS_CLIENT === 'ioredis' ? await import('ioredis') : undefined,
  resolve: require.resolve,
});
