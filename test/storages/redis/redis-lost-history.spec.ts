/**
 * When Redis loses acknowledged history (a restore from an older snapshot, a
 * Cluster failover to a replica that lagged), every instance is told, the
 * ones that lagged behind included: their own view cannot show it, since the
 * sequence numbers go on seamlessly from the older state.
 */
import { createCluster } from 'redis';
import { SessionSubject } from 'nestjs-mtproto-sessions';
import { RedisSessionStorage, type NodeRedisClient, type RedisSessionStorageOptions } from 'nestjs-mtproto-sessions/redis';
import { RecordingLogger } from '../../support/recording-logger';
import { EventLog } from '../../support/event-log';
import { connectRaw } from '../../support/raw-redis';
import { describeRedis, startRedisCluster, startRedisServer, type RedisCluster, type RedisServer } from '../../support/redis-server';
import { startTcpProxy, type TcpProxy } from '../../support/tcp-proxy';
import { pollUntil, untilResolves } from '../../support/wait-until';


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
  let position = '0-0';
  // Each check blocks in XREAD for up to 500 ms: no pause between them.
  await pollUntil(async () => {
    const reply = (await read.call(client, { key: stream, id: position }, { BLOCK: 500, COUNT: 100 })) as { messages: { id: string; message: Record<string, string> }[] }[] | null;
    for (const entry of reply?.[0]?.messages ?? []) {
      if (entry.message.t === 'l') return true;
      position = entry.id;
    }
    return false;
  }, `a loss entry on ${stream}`, { timeoutMs: 15_000, intervalMs: 0 });
}

/**
 * The first answer of `call`, retried while it fails (each try bounded by commandTimeout), for at most 20 s;
 * 50 ms between tries, so that a call failing at once does not keep the event loop from the readers.
 */
function settled<T>(call: () => Promise<T>): Promise<T> {
  return untilResolves(call, 'an answer', { timeoutMs: 20_000, intervalMs: 50 });
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

  /** A Redis of its own, instance a on it, and b reaching it through a proxy the test can cut off: b falls behind while a goes on. */
  async function laggingPair(name: string): Promise<{ a: Instance; b: Instance; server: RedisServer; proxy: TcpProxy }> {
    const started = await startRedisServer();
    server = started;
    const cut = await startTcpProxy(started.port);
    proxy = cut;
    const keyPrefix = `${name}-${process.pid}`;
    const a = await instance({ url: started.url, keyPrefix, instanceId: 'a' });
    const b = await instance({ url: cut.url, keyPrefix, instanceId: 'b' });
    instances.push(a, b);
    return { a, b, server: started, proxy: cut };
  }

  it('a restore from an older snapshot while one instance lags: both are told, and the lagging one by the other', async () => {
    const { a, b, server, proxy } = await laggingPair('restore');

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
    const raw = await connectRaw(server.url);
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
    const { a, b, server, proxy } = await laggingPair('restart');

    expect(await a.subject.createSession(1n)).toBe(true);
    expect(await a.subject.createSession(2n)).toBe(true);
    await b.log.untilCount(2);
    proxy.partition();
    await server.restart();
    await a.log.until(() => a.log.missed.length > 0, 'a told of the loss');
    const raw = await connectRaw(server.url);
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

/** The first `count` unscoped session ids (from 1) that `storage` puts in the key group whose stream is `events`. */
function sessionsIn(storage: RedisSessionStorage, events: string, count: number): bigint[] {
  const ids: bigint[] = [];
  for (let id = 1n; ids.length < count; id++) if (storage.keysOf(id).events === events) ids.push(id);
  return ids;
}

describeRedis('lost history on a Redis Cluster failover (real redis-server cluster with replicas)', () => {
  let cluster: RedisCluster | undefined;
  const closers: (() => Promise<unknown>)[] = [];

  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
    await cluster?.stop();
    cluster = undefined;
  }, 30_000);

  it('a master fails over to a replica that lacked acknowledged writes while one instance lags: both are told, once, and the lagging one by the other', async () => {
    cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1 });
    const keyPrefix = `failover-${process.pid}`;
    // b reaches every node through a proxy of its own, which the test can cut off: the
    // announced addresses are mapped to the proxies, so b's readers (duplicates) use them too.
    const proxies = new Map<number, TcpProxy>();
    for (const node of cluster.nodes) proxies.set(node.port, await startTcpProxy(node.port));
    closers.push(() => Promise.all([...proxies.values()].map((proxy) => proxy.close())));
    const connect = async (throughProxies: boolean) => {
      const proxyOf = (address: string) => proxies.get(Number(address.slice(address.lastIndexOf(':') + 1)));
      const client = createCluster({
        rootNodes: throughProxies ? [...proxies.values()].map((proxy) => ({ url: proxy.url })) : cluster!.rootNodes,
        defaults: { socket: { reconnectStrategy: 50 } },
        ...(throughProxies ? { nodeAddressMap: (address: string) => {
          const proxy = proxyOf(address);
          return proxy === undefined ? undefined : { host: '127.0.0.1', port: proxy.port };
        } } : {}),
      });
      client.on('error', () => undefined);
      await client.connect();
      closers.push(() => client.close());
      return client as unknown as NodeRedisClient;
    };
    const a = await instance({ client: await connect(false), keyPrefix, instanceId: 'a' });
    const b = await instance({ client: await connect(true), keyPrefix, instanceId: 'b' });
    closers.push(() => a.storage.close(), () => b.storage.close());

    // Every session of the test in one key group, the one whose master fails: its loss is certain,
    // and no other group loses anything (4 groups a master with the default 12).
    const group = a.storage.keysOf(1n);
    const [s1, s2, s3, s4, s5] = sessionsIn(a.storage, group.events, 5) as [bigint, bigint, bigint, bigint, bigint];
    expect(sessionsIn(b.storage, group.events, 5)).toEqual([s1, s2, s3, s4, s5]);

    expect(await a.subject.createSession(s1)).toBe(true);
    await b.log.untilCount(1);
    const { master, replicas } = await cluster.ownersOf(group.events);
    const replica = replicas[0]!;
    // The replica has s1 once WAIT says so. Then it stalls, and the master drops
    // its link, so that what follows reaches the master alone (asynchronous replication).
    expect((await master.cli('WAIT', '1', '10000')).trim()).toBe('1');
    // b is cut off from that master: it reads nothing of what follows there.
    proxies.get(master.port)!.partition();
    replica.pause();
    await master.cli('CLIENT', 'KILL', 'TYPE', 'replica');
    // Acknowledged: a's observers heard them, and the calls resolved true.
    expect(await a.subject.createSession(s2)).toBe(true);
    expect(await a.subject.createSession(s3)).toBe(true);
    expect(a.log.lines).toEqual([`created:${s1}`, `created:${s2}`, `created:${s3}`]);

    // The master dies before the replica is back: its last writes die with it.
    await master.kill();
    replica.resume();
    await replica.cli('CLUSTER', 'FAILOVER', 'TAKEOVER');
    await cluster.untilOk();

    // a read sequence 3 and now finds 1: Redis lost history, and a records it in the group's stream.
    await a.log.until(() => a.log.missed.length > 0, 'a told of the loss', 40_000);
    // The new master, read directly (it serves the group's slot now).
    const raw = await connectRaw(replica.url);
    closers.push(() => raw.close());
    await untilLossEntry(raw, group.events);

    // b, back, sees a seamless sequence (s1, then the loss entry): only the loss entry tells it.
    proxies.get(master.port)!.heal();
    await b.log.until(() => b.log.missed.length > 0, 'b told of the loss', 40_000);
    expect(b.log.lines).toEqual([`created:${s1}`]);
    expect(a.log.missed).toHaveLength(1);
    expect(b.log.missed).toHaveLength(1);
    expect(a.log.missed[0]).toMatchObject({ reason: 'lost', origin: 'a' });
    expect(b.log.missed[0]).toMatchObject({ reason: 'lost', origin: 'a' });
    expect(a.logger.warnings.join('\n')).toContain(`Session event stream ${group.events} went back to sequence 1 from 3`);
    expect(b.logger.warnings.join('\n')).toContain(`Instance a found that Redis lost acknowledged session history on ${group.events}`);

    // s2 and s3 are gone with the old master, on both. The cluster clients may take a moment
    // to learn the new topology; until then calls fail within their bound (polled, bounded).
    for (const peer of [a, b]) {
      expect(await settled(() => peer.subject.hasSession(s3))).toBe(false);
      expect(await settled(() => peer.subject.hasSession(s2))).toBe(false);
      expect(await settled(() => peer.subject.hasSession(s1))).toBe(true);
    }

    // Both go on in that group: a session created on either reaches the other, and nobody is told twice.
    expect(await b.subject.createSession(s4)).toBe(true);
    await a.log.until(() => a.log.lines.includes(`created:${s4}`), `a hears ${s4}`, 20_000);
    expect(await a.subject.createSession(s5)).toBe(true);
    await b.log.until(() => b.log.lines.includes(`created:${s5}`), `b hears ${s5}`, 20_000);
    expect(a.log.lines).toEqual([`created:${s1}`, `created:${s2}`, `created:${s3}`, `created:${s4}`, `created:${s5}`]);
    expect(b.log.lines).toEqual([`created:${s1}`, `created:${s4}`, `created:${s5}`]);
    expect(a.log.missed).toHaveLength(1);
    expect(b.log.missed).toHaveLength(1);
    // One loss entry, a's: b, told by it, recorded none of its own.
    const entries = ((await raw.xRange(group.events, '-', '+')) ?? []).flatMap((entry) => (entry === null ? [] : [entry.message]));
    expect(entries.filter((message) => message.t === 'l')).toEqual([expect.objectContaining({ o: 'a', g: '1', n: '2' })]);
  }, 150_000);
});
