import { createCluster } from 'redis';
import { Cluster, Redis } from 'ioredis';
import { RedisSessionStorage, type NodeRedisClient } from 'nestjs-mtproto-sessions/redis';
import { describeSessionStorage } from 'nestjs-mtproto-sessions/testing';
import { RecordingLogger } from '../support/recording-logger';
import { describeRedis, startRedisCluster, startRedisServer, type RedisCluster, type RedisServer } from '../support/redis-server';

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
      (options) => new RedisSessionStorage({ url: server.url, keyPrefix: freshPrefix(), shards, logger: new RecordingLogger(), ...options }),
      { lifetime: true },
    );
  }

  describeSessionStorage(
    'RedisSessionStorage({ url, localReads: false })',
    (options) => new RedisSessionStorage({ url: server.url, keyPrefix: freshPrefix(), logger: new RecordingLogger(), localReads: false, ...options }),
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
      (options) => new RedisSessionStorage({ client, keyPrefix: freshPrefix(), shards, logger: new RecordingLogger(), ...options }),
      { lifetime: true },
    );
  }
});

describeRedis('RedisSessionStorage conformance on an ioredis client, Redis standalone', () => {
  let server: RedisServer;
  let client: Redis;
  beforeAll(async () => {
    server = await startRedisServer();
    client = new Redis(server.url, { lazyConnect: true });
    client.on('error', () => undefined);
    await client.connect();
  }, 30_000);
  afterAll(async () => {
    await client?.quit();
    await server?.stop();
  });

  describeSessionStorage(
    'RedisSessionStorage({ client: new Redis() })',
    (options) => new RedisSessionStorage({ client, keyPrefix: freshPrefix(), logger: new RecordingLogger(), ...options }),
    { lifetime: true },
  );
});

describeRedis('RedisSessionStorage conformance on an ioredis Cluster of 3 masters', () => {
  let cluster: RedisCluster;
  let client: Cluster;
  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3 });
    client = new Cluster(cluster.nodes.map(({ host, port }) => ({ host, port })), { lazyConnect: true });
    client.on('error', () => undefined);
    await client.connect();
  }, 60_000);
  afterAll(async () => {
    await client?.quit();
    await cluster?.stop();
  });

  describeSessionStorage(
    'RedisSessionStorage({ client: new Cluster() })',
    (options) => new RedisSessionStorage({ client, keyPrefix: freshPrefix(), logger: new RecordingLogger(), ...options }),
    { lifetime: true },
  );
});
