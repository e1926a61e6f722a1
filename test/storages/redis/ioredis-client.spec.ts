import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { SessionStorageUnavailableError, SessionSubject } from 'nestjs-mtproto-sessions';
import { RedisSessionStorage } from 'nestjs-mtproto-sessions/redis';
import { EventLog } from '../../support/event-log';
import { RecordingLogger } from '../../support/recording-logger';
import { describeRedis, startRedisCluster, startRedisServer, type RedisCluster, type RedisServer } from '../../support/redis-server';
import { untilResolves } from '../../support/wait-until';

let prefixes = 0;
const freshPrefix = () => `ioredis-${process.pid}-${++prefixes}`;

describe('RedisSessionStorage refuses an ioredis client it cannot use', () => {
  it('refuses an ioredis client with a keyPrefix of its own, naming the option to use instead', () => {
    const client = new Redis({ lazyConnect: true, keyPrefix: 'app:' });
    expect(() => new RedisSessionStorage({ client })).toThrow(new TypeError(
      'RedisSessionStorage client: an ioredis client with keyPrefix "app:" is not supported (the storage names its keys itself); give RedisSessionStorage its own keyPrefix option instead',
    ));
  });

  it('refuses a client that is neither node-redis nor ioredis', () => {
    expect(() => new RedisSessionStorage({ client: {} as never })).toThrow(
      new TypeError('RedisSessionStorage client must be a node-redis client or cluster (createClient, createCluster) or an ioredis Redis or Cluster'),
    );
  });
});

describeRedis('RedisSessionStorage on an ioredis Redis client', () => {
  let server: RedisServer;
  const clients: Redis[] = [];
  const open: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    server = await startRedisServer();
  }, 30_000);
  afterEach(async () => {
    await Promise.allSettled(open.splice(0).map((closable) => closable.close()));
    for (const client of clients.splice(0)) client.disconnect();
  });
  afterAll(() => server?.stop());

  function appClient(options: RedisOptions = {}): Redis {
    const client = new Redis(server.port, server.host, options);
    client.on('error', () => undefined);
    clients.push(client);
    return client;
  }

  it('uses the client without closing it, and waits for one that is still connecting', async () => {
    const client = appClient();
    // Not connected yet: calls wait for it (within commandTimeout).
    const logger = new RecordingLogger();
    const storage = new RedisSessionStorage({ client, keyPrefix: freshPrefix(), logger });
    const subject = new SessionSubject(storage, { logger });
    const log = new EventLog();
    subject.subscribe(log);
    await expect(subject.createSession(11n, -1n)).resolves.toBe(true);
    await expect(subject.hasSession(11n, -1n)).resolves.toBe(true);
    expect(log.lines).toEqual(['created:11@-1']);
    await subject.close();
    expect(client.status).toBe('ready');
    await expect(client.ping()).resolves.toBe('PONG');
  });

  it("settles every call within commandTimeout while Redis is away, even with an offline queue that waits forever, and runs none of them later", async () => {
    const commandTimeout = 300;
    // maxRetriesPerRequest: null keeps a queued command waiting for as long as Redis is away.
    const client = appClient({ maxRetriesPerRequest: null });
    const logger = new RecordingLogger();
    const storage = new RedisSessionStorage({ client, keyPrefix: freshPrefix(), commandTimeout, logger });
    const subject = new SessionSubject(storage, { logger });
    const log = new EventLog();
    subject.subscribe(log);
    await expect(subject.createSession(1n)).resolves.toBe(true);

    await server.stop();
    const started = performance.now();
    // 99 is not in the local replica, so its lookup asks Redis (a live session would be answered locally).
    const outcomes = await Promise.allSettled([subject.createSession(2n), subject.destroySession(1n), subject.hasSession(99n), storage.count(), storage.ping()]);
    expect(performance.now() - started).toBeLessThan(commandTimeout + 1000);
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(SessionStorageUnavailableError);
    }

    await server.restart();
    // Nothing in the public API announces that Redis is back: ping() is retried, bounded.
    await untilResolves(() => storage.ping(), 'Redis to answer ping() again', { intervalMs: 25 });
    // A transition after the outage: once it is heard, anything queued during the outage would have run before it.
    await expect(subject.createSession(3n)).resolves.toBe(true);
    await log.until(() => log.lines.includes('created:3'), 'created:3');
    await expect(subject.hasSession(2n)).resolves.toBe(false);
    expect(log.lines).toEqual(['created:1', 'created:3']);
    open.push(subject);
  }, 30_000);
});

describeRedis('RedisSessionStorage on an ioredis Cluster of 3 masters, two instances', () => {
  let cluster: RedisCluster;
  const clients: Cluster[] = [];

  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3 });
  }, 60_000);
  afterAll(async () => {
    for (const client of clients) client.disconnect();
    await cluster?.stop();
  });

  function instance(keyPrefix: string, instanceId: string) {
    const client = new Cluster(cluster.nodes.map(({ host, port }) => ({ host, port })));
    client.on('error', () => undefined);
    clients.push(client);
    const logger = new RecordingLogger();
    const subject = new SessionSubject(new RedisSessionStorage({ client, keyPrefix, instanceId, logger }), { logger });
    const log = new EventLog();
    subject.subscribe(log);
    return { subject, log };
  }

  it('spreads sessions over 12 key groups by default, as on a node-redis Cluster', async () => {
    const client = new Cluster(cluster.nodes.map(({ host, port }) => ({ host, port })));
    client.on('error', () => undefined);
    clients.push(client);
    const storage = new RedisSessionStorage({ client, keyPrefix: freshPrefix(), logger: new RecordingLogger() });
    try {
      expect(storage.keyGroups).toHaveLength(12);
    } finally {
      await storage.close();
    }
  });

  it('delivers every transition to both instances, in order, and lets one of many concurrent creates win', async () => {
    const prefix = freshPrefix();
    const a = instance(prefix, 'a');
    const b = instance(prefix, 'b');
    try {
      await Promise.all([a.subject.ready(), b.subject.ready()]);
      const results = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? a : b).subject.createSession(7n, 2n)));
      expect(results.filter(Boolean)).toHaveLength(1);
      await expect(b.subject.destroySession(7n, 2n)).resolves.toBe(true);
      await expect(a.subject.createSession(-8n)).resolves.toBe(true);
      const expected = ['created:7@2', 'destroyed:7@2', 'created:-8'];
      for (const peer of [a, b]) {
        await peer.log.until(() => peer.log.lines.length >= expected.length, `${expected.length} events`);
        expect(peer.log.lines).toEqual(expected);
      }
    } finally {
      await Promise.all([a.subject.close(), b.subject.close()]);
    }
  }, 30_000);
});
