import { createCluster } from 'redis';
import { type SessionLogger } from 'nestjs-mtproto-sessions';
import { RedisSessionStorage, type NodeRedisClient } from 'nestjs-mtproto-sessions/redis';
import { describeSessionStorage } from 'nestjs-mtproto-sessions/testing';
import { describeRedis, startRedisCluster, startRedisServer, type RedisCluster, type RedisServer } from '../support/redis-server';

const quiet: SessionLogger = { warn: () => undefined, error: () => undefined };
let prefixes = 0;
const freshPrefix = () => `conformance-${process.pid}-${++prefixes}`;

describeRedis('RedisSessionStorage conformance on Redis standalone', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedisServer();
  }, 30_000);
  afterAll(() => server?.stop());

  for (const shards of [1, 12]) {
    describeSessionStorage(
      `RedisSessionStorage({ url, shards: ${shards} })`,
      (options) => new RedisSessionStorage({ url: server.url, keyPrefix: freshPrefix(), shards, logger: quiet, ...options }),
      { lifetime: true },
    );
  }

  describeSessionStorage(
    'RedisSessionStorage({ url, localReads: false })',
    (options) => new RedisSessionStorage({ url: server.url, keyPrefix: freshPrefix(), logger: quiet, localReads: false, ...options }),
    { lifetime: true },
  );
});

describeRedis('RedisSessionStorage conformance on a 3-master Redis Cluster', () => {
  let cluster: RedisCluster;
  let client: NodeRedisClient;
  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3 });
    const connected = createCluster({ rootNodes: cluster.rootNodes });
    connected.on('error', () => undefined);
    await connected.connect();
    client = connected;
  }, 60_000);
  afterAll(async () => {
    await client?.close();
    await cluster?.stop();
  });

  for (const shards of [1, 12]) {
    describeSessionStorage(
      `RedisSessionStorage({ client: cluster, shards: ${shards} })`,
      (options) => new RedisSessionStorage({ client, keyPrefix: freshPrefix(), shards, logger: quiet, ...options }),
      { lifetime: true },
    );
  }
});
