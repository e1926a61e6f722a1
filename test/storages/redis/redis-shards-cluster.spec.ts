/**
 * Key groups on a real 3-master Redis Cluster: where the groups land, how the
 * script calls share out over the masters (INFO commandstats per node), and a
 * master killed mid-burst: only its groups' calls fail, within commandTimeout;
 * the other groups and their events keep flowing; no event is lost or
 * repeated; service is back once the master returns.
 */
import { createCluster } from 'redis';
import { SessionStorageUnavailableError, SessionSubject, type SessionEvent } from 'nestjs-mtproto-sessions';
import { RedisSessionStorage, type NodeRedisClient, type RedisSessionStorageOptions } from 'nestjs-mtproto-sessions/redis';
import { keySlot } from '../../../src/storages/redis/redis-key-routing';
import { EventLog, eventLine } from '../../support/event-log';
import { pool } from '../../support/pool';
import { connectRaw } from '../../support/raw-redis';
import { RecordingLogger } from '../../support/recording-logger';
import { describeRedis, startRedisCluster, type RedisCluster, type RedisServer } from '../../support/redis-server';
import { spreadId } from '../../support/session-test-helpers';
import { pollUntil } from '../../support/wait-until';

async function nodeCommand(node: RedisServer, args: string[]): Promise<unknown> {
  const client = await connectRaw(node.url);
  try {
    return await client.sendCommand(args);
  } finally {
    client.destroy();
  }
}

/** Which node (by port) owns each slot range, from CLUSTER SLOTS. */
async function slotOwners(node: RedisServer): Promise<{ from: number; to: number; port: number }[]> {
  const reply = (await nodeCommand(node, ['CLUSTER', 'SLOTS'])) as [number, number, [string, number, ...unknown[]]][];
  return reply.map(([from, to, [, port]]) => ({ from, to, port }));
}

function ownerOf(owners: { from: number; to: number; port: number }[], key: string): number {
  const slot = keySlot(key);
  return owners.find((range) => slot >= range.from && slot <= range.to)!.port;
}

/**
 * Events each node recorded since its last CONFIG RESETSTAT (the XADDs its scripts ran): one per transition,
 * however the calls travelled (one script each, or several of one key group's in a batch).
 */
async function eventsRecorded(node: RedisServer): Promise<number> {
  const info = String(await nodeCommand(node, ['INFO', 'commandstats']));
  return Number(/^cmdstat_xadd:calls=(\d+)/m.exec(info)?.[1] ?? 0);
}

async function clusterOk(node: RedisServer): Promise<boolean> {
  try {
    return String(await nodeCommand(node, ['CLUSTER', 'INFO'])).includes('cluster_state:ok');
  } catch {
    return false;
  }
}

describeRedis('RedisSessionStorage key groups on a 3-master Redis Cluster', () => {
  let cluster: RedisCluster;
  let prefixes = 0;
  const open: { close(): Promise<void> }[] = [];
  const freshPrefix = () => `cluster-shards-${process.pid}-${++prefixes}`;

  beforeAll(async () => {
    // Data kept over a restart (a master that comes back has what it acknowledged), and the
    // other masters keep serving their slots while one is down.
    cluster = await startRedisCluster({
      masters: 3,
      extraArgs: ['--appendonly', 'yes', '--appendfsync', 'always', '--cluster-require-full-coverage', 'no'],
    });
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });
  afterEach(async () => {
    await Promise.allSettled(open.splice(0).reverse().map((closable) => closable.close()));
  });

  /** A client of its own, as each application process has. */
  async function clusterClient(): Promise<NodeRedisClient> {
    const client = createCluster({ rootNodes: cluster.rootNodes });
    client.on('error', () => undefined);
    await client.connect();
    open.push({ close: async () => void (await client.close().catch(() => client.destroy())) });
    return client;
  }

  async function instance(keyPrefix: string, instanceId: string, options: Partial<RedisSessionStorageOptions> = {}) {
    const logger = new RecordingLogger();
    const storage = new RedisSessionStorage({ client: await clusterClient(), keyPrefix, instanceId, logger, ...options });
    const subject = new SessionSubject(storage, { logger });
    const log = new EventLog();
    subject.subscribe(log);
    open.push(subject);
    return { storage, subject, log, id: instanceId };
  }

  it('spreads sessions over 12 key groups by default on a Cluster client, each read on one connection to its own master', async () => {
    const clientsOn = (node: RedisServer, what: string) => nodeCommand(node, ['CLIENT', 'LIST', 'TYPE', 'normal'])
      .then((list) => String(list).split('\n').filter((line) => line.includes(what)).length);
    const before = await Promise.all(cluster.nodes.map((node) => clientsOn(node, 'id=')));
    const { subject, storage } = await instance(freshPrefix(), 'a');
    expect(storage.keyGroups).toHaveLength(12);
    await subject.ready();
    await expect(subject.createSession(1n)).resolves.toBe(true);
    // Readers block in XREAD on their group's master only: 4 per master, none elsewhere (nothing announces it: polled, bounded).
    let readers: number[] = [];
    await pollUntil(async () => {
      readers = await Promise.all(cluster.nodes.map((node) => clientsOn(node, 'cmd=xread')));
      return readers.every((count) => count === 4);
    }, () => `4 readers on each master; saw ${JSON.stringify(readers)}`, { timeoutMs: 10_000, intervalMs: 50 });
    // And hold no other connection: per master, its 4 readers and the instance's command connection.
    const after = await Promise.all(cluster.nodes.map((node) => clientsOn(node, 'id=')));
    expect(after.map((count, i) => count - before[i]!)).toEqual([5, 5, 5]);
  }, 30_000);

  it('finds a master\'s data gone with nobody writing (FLUSHALL on one master): its groups\' loss is told to both instances, the other groups keep answering', async () => {
    const prefix = freshPrefix();
    const [a, b] = await Promise.all([instance(prefix, 'a', { verifyInterval: 200 }), instance(prefix, 'b', { verifyInterval: 200 })]);
    await Promise.all([a.subject.ready(), b.subject.ready()]);
    const ids = Array.from({ length: 48 }, (_, i) => spreadId(i));
    for (const id of ids) await expect(a.subject.createSession(id)).resolves.toBe(true);
    await Promise.all([a, b].map((peer) => peer.log.untilCount(ids.length)));
    await Promise.all([a.storage.localReadsReady(), b.storage.localReadsReady()]);

    const { master } = await cluster.ownersOf(a.storage.keyGroups[0]!.sessions);
    const owners = await slotOwners(cluster.nodes[0]!);
    const onMaster = (id: bigint) => ownerOf(owners, a.storage.keysOf(id).sessions) === master.port;
    const lostGroups = a.storage.keyGroups.filter((keys) => ownerOf(owners, keys.sessions) === master.port).length;
    expect(ids.some(onMaster) && !ids.every(onMaster)).toBe(true);

    await nodeCommand(master, ['FLUSHALL']);
    const flushed = performance.now();
    await Promise.all([a, b].map((peer) => peer.log.until(() => peer.log.missed.length >= lostGroups, `${peer.id} told of ${lostGroups} groups' loss`, 10_000)));
    // The verifier's interval plus the default commandTimeout, with slack for a loaded machine.
    expect(performance.now() - flushed).toBeLessThan(200 + 2000 + 1000);
    for (const peer of [a, b]) {
      expect(peer.log.missed.map((notice) => notice.reason)).toEqual(Array.from({ length: lostGroups }, () => 'lost'));
      for (const id of ids) {
        await pollUntil(async () => (await peer.subject.hasSession(id)) === !onMaster(id), `${peer.id} to answer ${!onMaster(id)} for ${id}`);
      }
    }
  }, 30_000);

  it('takes a Cluster client that is still connecting, and is ready once it has connected', async () => {
    // A node-redis Cluster emits 'connect' once it knows its slots, never 'ready': waiting for 'ready' never ends.
    const client = createCluster({ rootNodes: cluster.rootNodes });
    client.on('error', () => undefined);
    const connecting = client.connect();
    open.push({ close: async () => void (await client.close().catch(() => client.destroy())) });
    const storage = new RedisSessionStorage({ client: client as unknown as NodeRedisClient, keyPrefix: freshPrefix(), logger: new RecordingLogger(), commandTimeout: 5000 });
    open.push(storage);
    await storage.ready();
    await connecting;
    await expect(storage.createSession(1n)).resolves.toBe(true);
    await expect(storage.hasSession(1n)).resolves.toBe(true);
  }, 30_000);

  it('refuses a Cluster client that was never connected, saying so', () => {
    const client = createCluster({ rootNodes: cluster.rootNodes });
    expect(() => new RedisSessionStorage({ client: client as unknown as NodeRedisClient, keyPrefix: freshPrefix() })).toThrow(
      expect.objectContaining({ name: 'TypeError', message: expect.stringMatching(/client: this node-redis client is not connected; call client.connect\(\) first/) }),
    );
  });

  it('places 12 key groups 4 on each master, with slots as the Cluster computes them', async () => {
    const { storage } = await instance(freshPrefix(), 'a', { shards: 12 });
    const owners = await slotOwners(cluster.nodes[0]!);
    const perMaster = new Map<number, number>();
    for (const keys of storage.keyGroups) {
      await expect(nodeCommand(cluster.nodes[0]!, ['CLUSTER', 'KEYSLOT', keys.sessions])).resolves.toBe(keySlot(keys.sessions));
      const port = ownerOf(owners, keys.sessions);
      perMaster.set(port, (perMaster.get(port) ?? 0) + 1);
    }
    expect([...perMaster.values()]).toEqual([4, 4, 4]);
  }, 30_000);

  it.each([[1, 1], [12, 0.45]])('with shards: %p, the busiest master records at most %p of the events of a create+destroy burst', async (shards, most) => {
    const { storage } = await instance(freshPrefix(), 'a', { shards });
    await storage.ready();
    await Promise.all(cluster.nodes.map((node) => nodeCommand(node, ['CONFIG', 'RESETSTAT'])));
    await pool(1000, 50, async (i) => {
      await expect(storage.createSession(spreadId(i))).resolves.toBe(true);
      await expect(storage.destroySession(spreadId(i))).resolves.toBe(true);
    });
    const calls = await Promise.all(cluster.nodes.map(eventsRecorded));
    const total = calls.reduce((sum, count) => sum + count, 0);
    expect(total).toBeGreaterThanOrEqual(2000);
    const share = Math.max(...calls) / total;
    expect(share).toBeLessThanOrEqual(most);
    if (shards === 1) expect(share).toBe(1);
  }, 30_000);

  it('fails only the killed master\'s groups within commandTimeout, keeps the others and their events flowing, and loses or repeats no event', async () => {
    const commandTimeout = 500;
    const margin = 1000;
    const prefix = freshPrefix();
    const a = await instance(prefix, 'a', { shards: 12, commandTimeout });
    const b = await instance(prefix, 'b', { shards: 12, commandTimeout });
    await Promise.all([a.subject.ready(), b.subject.ready()]);
    const victim = cluster.nodes[1]!;
    const owners = await slotOwners(cluster.nodes[0]!);
    const onVictim = (id: bigint) => ownerOf(owners, a.storage.keysOf(id).sessions) === victim.port;

    const sessions = 1500;
    const failures: { id: bigint; ms: number; error: unknown }[] = [];
    const unexpected: string[] = [];
    let settled = 0;
    let killed: Promise<void> | undefined;
    await pool(sessions, 40, async (i) => {
      const id = spreadId(i);
      for (const [peer, call] of [[a, 'create'], [b, 'destroy']] as const) {
        const started = performance.now();
        try {
          const done = await (call === 'create' ? peer.subject.createSession(id) : peer.subject.destroySession(id));
          if (!done && !onVictim(id)) unexpected.push(`${call} ${id} on ${peer.id} resolved false`);
        } catch (error) {
          failures.push({ id, ms: performance.now() - started, error });
          break;
        }
      }
      // Mid-burst: a third of the sessions done, the rest still to come.
      if (++settled === sessions / 3) killed = victim.kill();
    });
    await killed;

    const victimSessions = Array.from({ length: sessions }, (_, i) => spreadId(i)).filter(onVictim);
    expect(victimSessions.length).toBeGreaterThan(sessions / 6);
    // Only the victim's groups failed, each call within commandTimeout, with the typed error.
    expect(failures.filter((failure) => !onVictim(failure.id)).map((failure) => String(failure.error))).toEqual([]);
    expect(unexpected).toEqual([]);
    expect(failures.length).toBeGreaterThan(0);
    for (const failure of failures) {
      expect(failure.error).toBeInstanceOf(SessionStorageUnavailableError);
      expect(failure.ms).toBeLessThan(commandTimeout + margin);
    }
    // While the victim is still down, both instances have heard every transition of the other groups.
    const others = Array.from({ length: sessions }, (_, i) => spreadId(i)).filter((id) => !onVictim(id));
    const heardOthers = (log: EventLog) => {
      const lines = new Set(log.lines);
      return others.every((id) => lines.has(`created:${id}`) && lines.has(`destroyed:${id}`));
    };
    for (const peer of [a, b]) await peer.log.until(() => heardOthers(peer.log), `${peer.id} to hear the other groups`);

    // The master returns: its groups serve again, without new storages.
    await victim.restart();
    await pollUntil(() => clusterOk(victim), 'the restarted master to rejoin', { timeoutMs: 15_000, intervalMs: 50 });
    const probe = victimSessions[0]!;
    await pollUntil(async () => {
      try {
        await a.subject.hasSession(probe);
        return true;
      } catch {
        return false;
      }
    }, "the victim's groups to answer again", { timeoutMs: 15_000, intervalMs: 50 });
    await expect(a.subject.createSession(probe, 99n)).resolves.toBe(true);
    await expect(b.subject.destroySession(probe, 99n)).resolves.toBe(true);

    // Every entry of every group's stream reaches each instance once, in its group's order.
    const raw = await clusterClient() as unknown as {
      xRange(key: string, from: string, to: string): Promise<{ message: Record<string, string> }[]>;
      hGetAll(key: string): Promise<Record<string, string>>;
    };
    const streams = await Promise.all(a.storage.keyGroups.map((keys) => raw.xRange(keys.events, '-', '+')));
    // Entries name their origin by a code interned in the group's origins hash.
    const origins = await Promise.all(a.storage.keyGroups.map((keys) => raw.hGetAll(keys.origins)));
    const total = streams.reduce((sum, entries) => sum + entries.length, 0);
    const groupOf = (event: SessionEvent) => a.storage.keyGroups.findIndex((keys) => keys.events === a.storage.keysOf(event.sessionId, event.authKeyId).events);
    for (const peer of [a, b]) {
      await peer.log.until(() => peer.log.events.length >= total, `${peer.id} to hear ${total} events`, 15_000);
      expect(peer.log.events).toHaveLength(total);
      streams.forEach((entries, group) => {
        const expected = entries.map(({ message }) => `${message.t === 'c' ? 'created' : 'destroyed'}:${message.s}${message.a === undefined ? '' : `@${message.a}`}#${origins[group]![`c:${message.i}`]}`);
        const heard = peer.log.events.filter((event) => groupOf(event) === group).map((event) => `${eventLine(event)}#${event.origin}`);
        expect([group, heard]).toEqual([group, expected]);
      });
      expect(peer.log.missed).toEqual([]);
    }
  }, 90_000);
});
