/**
 * When Redis loses acknowledged history (a restore from an older snapshot, a
 * Cluster failover to a replica that lagged), every instance is told, the
 * ones that lagged behind included: their own view cannot show it, since the
 * sequence numbers go on seamlessly from the older state.
 */
import { createClient, createCluster } from 'redis';
import { SessionSubject, type SessionLogger } from 'nestjs-mtproto-sessions';
import { RedisSessionStorage, type NodeRedisClient, type RedisSessionStorageOptions } from 'nestjs-mtproto-sessions/redis';
import { EventLog } from '../support/event-log';
import { describeRedis, startRedisCluster, startRedisServer, type RedisCluster, type RedisServer } from '../support/redis-server';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';

class RecordingLogger implements SessionLogger {
  readonly warnings: string[] = [];
  readonly errors: string[] = [];
  warn(message: string): void {
    this.warnings.push(message);
  }
  error(message: string): void {
    this.errors.push(message);
  }
}

interface Instance {
  readonly storage: RedisSessionStorage;
  readonly subject: SessionSubject;
  readonly log: EventLog;
  readonly logger: RecordingLogger;
}

async function instance(options: RedisSessionStorageOptions): Promise<Instance> {
  const logger = new RecordingLogger();
  const storage = new RedisSessionStorage({ commandTimeout: 1000, logger, ...options });
  const subject = new SessionSubject(storage, { logger });
  const log = new EventLog();
  subject.subscribe(log);
  await subject.ready();
  return { storage, subject, log, logger };
}

/** Waits (XREAD BLOCK, bounded) until the stream holds a loss entry, as recorded for the other instances. */
async function untilLossEntry(client: { xRead(...args: never[]): Promise<unknown> }, stream: string): Promise<void> {
  const read = client.xRead as unknown as (stream: { key: string; id: string }, options: { BLOCK: number; COUNT: number }) => Promise<unknown>;
  const deadline = Date.now() + 15_000;
  let position = '0-0';
  while (Date.now() < deadline) {
    const reply = (await read.call(client, { key: stream, id: position }, { BLOCK: 500, COUNT: 100 })) as { messages: { id: string; message: Record<string, string> }[] }[] | null;
    for (const entry of reply?.[0]?.messages ?? []) {
      if (entry.message.t === 'l') return;
      position = entry.id;
    }
  }
  throw new Error(`no loss entry on ${stream} within 15 s`);
}

/** The first answer of `call`, retried while it fails (each try bounded by commandTimeout), for at most 20 s. */
async function settled<T>(call: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
  }
}

describeRedis('lost history is reported by every instance (real redis-server)', () => {
  let server: RedisServer | undefined;
  let proxy: TcpProxy | undefined;
  const instances: Instance[] = [];

  afterEach(async () => {
    await Promise.all(instances.splice(0).map((peer) => peer.storage.close()));
    await proxy?.close();
    await server?.stop();
    proxy = undefined;
    server = undefined;
  });

  it('a restore from an older snapshot while one instance lags: both are told, and the lagging one by the other', async () => {
    server = await startRedisServer();
    proxy = await startTcpProxy(server.port);
    const keyPrefix = `restore-${process.pid}`;
    const a = await instance({ url: server.url, keyPrefix, instanceId: 'a' });
    // b reaches Redis through a proxy the test can cut off: it falls behind while a goes on.
    const b = await instance({ url: proxy.url, keyPrefix, instanceId: 'b' });
    instances.push(a, b);

    expect(await a.subject.createSession(1n)).toBe(true);
    await b.log.untilCount(1);
    const snapshot = await server.snapshot();

    proxy.partition();
    // Acknowledged: a's observers heard them, and the calls resolved true.
    expect(await a.subject.createSession(2n)).toBe(true);
    expect(await a.subject.createSession(3n)).toBe(true);
    expect(a.log.lines).toEqual(['created:1', 'created:2', 'created:3']);

    await server.restartFrom(snapshot);
    // a read sequence 3 and now finds 1: Redis lost history, and a records it in the stream.
    await a.log.until(() => a.log.missed.length > 0, 'a told of the loss');
    const raw = createClient({ url: server.url, socket: { reconnectStrategy: false } });
    raw.on('error', () => undefined);
    await raw.connect();
    try {
      await untilLossEntry(raw, a.storage.redisKeys.events);
    } finally {
      await raw.close();
    }

    // b, back, sees a seamless sequence (1, then the loss entry): only the loss entry tells it.
    proxy.heal();
    await b.log.until(() => b.log.missed.length > 0, 'b told of the loss', 15_000);
    expect(b.log.lines).toEqual(['created:1']);
    expect(a.log.missed).toHaveLength(1);
    expect(b.log.missed).toHaveLength(1);
    expect(a.log.missed[0]).toMatchObject({ reason: 'lost', origin: 'a' });
    expect(b.log.missed[0]).toMatchObject({ reason: 'lost', origin: 'a' });
    expect(b.logger.warnings.join('\n')).toMatch(/Instance a found that Redis lost acknowledged session history/);

    // Both go on: a later transition reaches both, and nobody is told twice.
    expect(await b.subject.createSession(4n)).toBe(true);
    await a.log.until(() => a.log.lines.includes('created:4'), 'a hears 4');
    expect(a.log.missed).toHaveLength(1);
    expect(b.log.missed).toHaveLength(1);
  }, 60_000);
  it('a restart without data while one instance lags: each is told once, and only one loss entry is written', async () => {
    // b has read further than the restarted Redis's sequence: it finds the loss at a's loss entry itself, which
    // must not make it record a second one (a would then be told twice).
    server = await startRedisServer();
    proxy = await startTcpProxy(server.port);
    const keyPrefix = `restart-${process.pid}`;
    const a = await instance({ url: server.url, keyPrefix, instanceId: 'a' });
    const b = await instance({ url: proxy.url, keyPrefix, instanceId: 'b' });
    instances.push(a, b);

    expect(await a.subject.createSession(1n)).toBe(true);
    expect(await a.subject.createSession(2n)).toBe(true);
    await b.log.untilCount(2);
    proxy.partition();
    await server.restart();
    await a.log.until(() => a.log.missed.length > 0, 'a told of the loss');
    const raw = createClient({ url: server.url, socket: { reconnectStrategy: false } });
    raw.on('error', () => undefined);
    await raw.connect();
    try {
      await untilLossEntry(raw, a.storage.redisKeys.events);
      proxy.heal();
      await b.log.until(() => b.log.missed.length > 0, 'b told of the loss', 15_000);
      expect(b.log.missed[0]).toMatchObject({ reason: 'lost' });

      // A transition after b is back reaches both: by then b has recorded whatever it was going to.
      expect(await b.subject.createSession(3n)).toBe(true);
      await a.log.until(() => a.log.lines.includes('created:3'), 'a hears 3');
      const entries = ((await raw.xRange(a.storage.redisKeys.events, '-', '+')) ?? []).flatMap((entry) => (entry === null ? [] : [entry.message]));
      expect(entries.filter((message) => message.t === 'l')).toEqual([expect.objectContaining({ o: 'a', g: '1' })]);
    } finally {
      await raw.close();
    }
    expect(a.log.missed).toHaveLength(1);
    expect(b.log.missed).toHaveLength(1);
    expect(b.log.lines).toEqual(['created:1', 'created:2', 'created:3']);
  }, 60_000);
});

describeRedis('lost history on a Redis Cluster failover (real redis-server cluster with replicas)', () => {
  let cluster: RedisCluster | undefined;
  const closers: (() => Promise<unknown>)[] = [];

  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
    await cluster?.stop();
    cluster = undefined;
  }, 30_000);

  // Skipped: it fails under load (hasSession of a lost session answered true after both instances were told);
  // issue 12 stays open for it. Run it alone with `npx jest test/redis/redis-lost-history` after removing .skip.
  it.skip('a master fails over to a replica that lacked acknowledged writes: every instance is told, once', async () => {
    cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1 });
    const keyPrefix = `failover-${process.pid}`;
    const connect = async () => {
      const client = createCluster({ rootNodes: cluster!.rootNodes, defaults: { socket: { reconnectStrategy: 50 } } });
      client.on('error', () => undefined);
      await client.connect();
      closers.push(() => client.close());
      return client as unknown as NodeRedisClient;
    };
    const a = await instance({ client: await connect(), keyPrefix, instanceId: 'a' });
    const b = await instance({ client: await connect(), keyPrefix, instanceId: 'b' });
    closers.push(() => a.storage.close(), () => b.storage.close());

    expect(await a.subject.createSession(1n)).toBe(true);
    await b.log.untilCount(1);
    const { master, replicas } = await cluster.ownersOf(`{${keyPrefix}}:events`);
    const replica = replicas[0]!;
    // The replica has session 1 once WAIT says so. Then it stalls, and the master drops
    // its link, so that what follows reaches the master alone (asynchronous replication).
    await master.cli('WAIT', '1', '5000');
    replica.pause();
    await master.cli('CLIENT', 'KILL', 'TYPE', 'replica');
    expect(await a.subject.createSession(2n)).toBe(true);
    expect(await a.subject.createSession(3n)).toBe(true);
    await b.log.untilCount(3);

    // The master dies before the replica is back: its last writes die with it.
    await master.kill();
    replica.resume();
    await replica.cli('CLUSTER', 'FAILOVER', 'TAKEOVER');
    await cluster.untilOk();

    await a.log.until(() => a.log.missed.length > 0, 'a told of the loss', 40_000);
    await b.log.until(() => b.log.missed.length > 0, 'b told of the loss', 40_000);
    for (const peer of [a, b]) {
      expect(peer.log.missed).toHaveLength(1);
      expect(peer.log.missed[0]!.reason).toBe('lost');
    }
    // Session 3 is gone with the old master. The application's cluster client may take a moment
    // to learn the new topology; until then calls fail within their bound (polled, bounded).
    expect(await settled(() => a.subject.hasSession(3n))).toBe(false);
    expect(await settled(() => a.subject.createSession(5n))).toBe(true);
    await b.log.until(() => b.log.lines.includes('created:5'), 'b hears 5', 40_000);
  }, 150_000);
});
