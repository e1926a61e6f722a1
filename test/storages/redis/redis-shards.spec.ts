/**
 * Sessions spread over key groups (`shards`) on a real standalone redis-server:
 * the option, the layout record and its refusals, routing, events across
 * groups, count, and maxSessions shared by the groups.
 */
import { createClient } from 'redis';
import { SessionLimitError, SessionSubject } from 'nestjs-mtproto-sessions';
import { RedisKeyLayoutError, RedisSessionStorage, type RedisSessionStorageOptions } from 'nestjs-mtproto-sessions/redis';
import { EventLog, eventLine } from '../../support/event-log';
import { RecordingLogger } from '../../support/recording-logger';
import { describeRedis, startRedisServer, type RedisServer } from '../../support/redis-server';
import { spreadId } from '../../support/session-test-helpers';

describe('RedisSessionStorage shards option', () => {
  it.each([0, -1, 1.5, Number.NaN, 1025, '12', null])('refuses shards %p with a TypeError naming the option', (shards) => {
    expect(() => new RedisSessionStorage({ url: 'redis://127.0.0.1:1', shards: shards as number })).toThrow(TypeError);
    expect(() => new RedisSessionStorage({ url: 'redis://127.0.0.1:1', shards: shards as number })).toThrow(/shards must be an integer from 1 to 1024/);
  });
});

describeRedis('RedisSessionStorage with several key groups (standalone)', () => {
  let server: RedisServer;
  let raw: ReturnType<typeof createClient>;
  let prefixes = 0;
  const open: { close(): Promise<void> }[] = [];
  const freshPrefix = () => `shards-${process.pid}-${++prefixes}`;

  beforeAll(async () => {
    server = await startRedisServer();
    raw = createClient({ url: server.url });
    await raw.connect();
  }, 30_000);
  afterAll(async () => {
    await raw?.close();
    await server?.stop();
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((closable) => closable.close()));
  });

  function storage(keyPrefix: string, options: Partial<RedisSessionStorageOptions> = {}): RedisSessionStorage {
    const created = new RedisSessionStorage({ url: server.url, keyPrefix, logger: new RecordingLogger(), ...options });
    open.push(created);
    return created;
  }

  function instance(keyPrefix: string, options: Partial<RedisSessionStorageOptions> = {}) {
    const store = storage(keyPrefix, options);
    const subject = new SessionSubject(store, { logger: new RecordingLogger() });
    const log = new EventLog();
    subject.subscribe(log);
    open.push(subject);
    return { subject, log, storage: store };
  }

  async function keysUnder(prefix: string): Promise<string[]> {
    return (await raw.keys(`{${prefix}*`)).sort();
  }

  it('keeps the one-group layout of earlier versions by default on standalone Redis', async () => {
    const prefix = freshPrefix();
    const store = storage(prefix);
    expect(store.keyGroups).toEqual([store.redisKeys]);
    expect(store.redisKeys.sessions).toBe(`{${prefix}}:sessions`);
    const client = createClient({ url: server.url });
    await client.connect();
    try {
      const borrowing = new RedisSessionStorage({ client, keyPrefix: prefix, logger: new RecordingLogger() });
      expect(borrowing.keyGroups).toHaveLength(1);
      await borrowing.close();
    } finally {
      await client.close();
    }
  });

  it('records the layout at ready() and spreads sessions over every group, each session in one group', async () => {
    const prefix = freshPrefix();
    const store = storage(prefix, { shards: 12 });
    await store.ready();
    await expect(raw.hGetAll(`{${prefix}}:layout`)).resolves.toEqual({ layout: 'groups-v1', shards: '12', maxSessions: '0' });
    for (let i = 0; i < 1200; i++) await store.createSession(spreadId(i), i % 3 === 0 ? spreadId(i + 7) : undefined);
    const sizes = await Promise.all(store.keyGroups.map((keys) => raw.zCard(keys.sessions)));
    expect(sizes.reduce((sum, size) => sum + size, 0)).toBe(1200);
    for (const size of sizes) expect(size).toBeGreaterThan(50);
    await expect(store.count()).resolves.toBe(1200);
    // The group the storage names for a session holds it, and no other group does.
    for (let i = 0; i < 50; i++) {
      const authKeyId = i % 3 === 0 ? spreadId(i + 7) : undefined;
      const member = authKeyId === undefined ? `${spreadId(i)}` : `${authKeyId}:${spreadId(i)}`;
      const holding = (await Promise.all(store.keyGroups.map((keys) => raw.zScore(keys.sessions, member)))).map((score) => score !== null);
      expect(holding.filter(Boolean)).toHaveLength(1);
      expect(store.keyGroups[holding.indexOf(true)]).toEqual(store.keysOf(spreadId(i), authKeyId));
    }
    // Nothing left in the one-group keys.
    await expect(raw.exists(`{${prefix}}:sessions`)).resolves.toBe(0);
  });

  it('refuses at ready() a shards other than the recorded one, and every call, writing nothing', async () => {
    const prefix = freshPrefix();
    const first = storage(prefix, { shards: 12 });
    await first.createSession(1n);
    const keysBefore = await keysUnder(prefix);
    for (const shards of [1, 4]) {
      const other = storage(prefix, { shards });
      const refusal = other.ready();
      await expect(refusal).rejects.toBeInstanceOf(RedisKeyLayoutError);
      await expect(refusal).rejects.toThrow(`records shards: 12, this storage has shards: ${shards}`);
      await expect(refusal).rejects.toMatchObject({ keyPrefix: prefix, configured: { shards }, recorded: { shards: 12 } });
      await expect(other.createSession(2n)).rejects.toBeInstanceOf(RedisKeyLayoutError);
      await expect(other.hasSession(1n)).rejects.toBeInstanceOf(RedisKeyLayoutError);
      await expect(other.count()).rejects.toBeInstanceOf(RedisKeyLayoutError);
    }
    expect(await keysUnder(prefix)).toEqual(keysBefore);
    await expect(first.hasSession(1n)).resolves.toBe(true);
  });

  it('refuses more groups over one-group data with no layout record (an earlier version), and lets shards: 1 use it', async () => {
    const prefix = freshPrefix();
    // What a version before layouts were recorded left: the one-group keys alone.
    const legacy = storage(prefix);
    await legacy.createSession(5n);
    await raw.del(`{${prefix}}:layout`);
    const sharded = storage(prefix, { shards: 12 });
    await expect(sharded.ready()).rejects.toThrow(/hold data in the one-group layout \(shards: 1.*but this storage has shards: 12/);
    await expect(raw.exists(`{${prefix}}:layout`)).resolves.toBe(0);
    const single = storage(prefix, { shards: 1 });
    await expect(single.hasSession(5n)).resolves.toBe(true);
    await expect(raw.hGetAll(`{${prefix}}:layout`)).resolves.toEqual({ layout: 'groups-v1', shards: '1', maxSessions: '0' });
  });

  it('refuses another maxSessions over several groups (the limit is the prefix\'s)', async () => {
    const prefix = freshPrefix();
    await storage(prefix, { shards: 4, maxSessions: 10 }).ready();
    await expect(storage(prefix, { shards: 4, maxSessions: 20 }).ready()).rejects.toThrow(/records maxSessions: 10 for its 4 key groups, this storage has maxSessions: 20/);
    await expect(storage(prefix, { shards: 4 }).ready()).rejects.toThrow(/this storage has no maxSessions/);
    await expect(storage(prefix, { shards: 4, maxSessions: 10 }).ready()).resolves.toBeUndefined();
  });

  it('delivers every transition of every group to every instance, each once, in order per session', async () => {
    const prefix = freshPrefix();
    const a = instance(prefix, { shards: 12, instanceId: 'a' });
    const b = instance(prefix, { shards: 12, instanceId: 'b' });
    await Promise.all([a.subject.ready(), b.subject.ready()]);
    const sessions = 300;
    await Promise.all(Array.from({ length: sessions }, async (_, i) => {
      const [first, second] = i % 2 === 0 ? [a, b] : [b, a];
      await first.subject.createSession(spreadId(i));
      await second.subject.destroySession(spreadId(i));
      await first.subject.createSession(spreadId(i));
    }));
    for (const peer of [a, b]) {
      await peer.log.untilCount(3 * sessions);
      expect(peer.log.events).toHaveLength(3 * sessions);
      const perSession = new Map<bigint, string[]>();
      for (const event of peer.log.events) perSession.set(event.sessionId, [...(perSession.get(event.sessionId) ?? []), eventLine(event)]);
      expect(perSession.size).toBe(sessions);
      for (const [id, lines] of perSession) expect(lines).toEqual([`created:${id}`, `destroyed:${id}`, `created:${id}`]);
      expect(peer.log.missed).toEqual([]);
    }
  });

  it('reports a gap in one group\'s stream once and rebuilds only that group\'s replica; the other groups keep answering', async () => {
    const prefix = freshPrefix();
    const b = instance(prefix, { shards: 12, instanceId: 'b' });
    const writer = storage(prefix, { shards: 12, instanceId: 'w' });
    const bStorage = b.storage;
    await b.subject.ready();
    await bStorage.localReadsReady();
    // Instrumentation: each group's replica counts its seeds.
    const groups = (bStorage as unknown as { groups: { replica: { generation: number } }[] }).groups;
    const keys = bStorage.keysOf(1n);
    const gap = bStorage.keyGroups.indexOf(keys);
    // One live session in another group, answered from its replica throughout.
    const other = Array.from({ length: 100 }, (_, i) => BigInt(1000 + i)).find((id) => bStorage.keysOf(id) !== keys)!;
    await expect(writer.createSession(other)).resolves.toBe(true);
    await expect(writer.createSession(1n)).resolves.toBe(true);
    await b.log.until(() => b.log.lines.includes('created:1') && b.log.lines.includes(`created:${other}`), 'b to see both creates');
    const before = groups.map((group) => group.replica.generation);

    // Three entries added and the first trimmed before b's (connected) reader of that group is served.
    const sequence = Number(await raw.get(keys.sequence));
    await raw.multi()
      .addCommand(['XADD', keys.events, '*', 't', 'c', 's', '2', 'o', 'w', 'n', String(sequence + 1)])
      .addCommand(['XADD', keys.events, '*', 't', 'c', 's', '3', 'o', 'w', 'n', String(sequence + 2)])
      .addCommand(['XADD', keys.events, '*', 't', 'c', 's', '4', 'o', 'w', 'n', String(sequence + 3)])
      .addCommand(['SET', keys.sequence, String(sequence + 3)])
      .addCommand(['XTRIM', keys.events, 'MAXLEN', '2'])
      .exec();
    await b.log.until(() => b.log.lines.includes('created:4'), 'b to see created:4');

    expect(b.log.missed).toHaveLength(1);
    expect(b.log.lines).not.toContain('created:2');
    const after = groups.map((group) => group.replica.generation);
    expect(after.map((generation, i) => generation !== before[i])).toEqual(before.map((_, i) => i === gap));
    expect(bStorage.healthDetails().eventsMissed).toBe(1);
    await expect(b.subject.hasSession(other)).resolves.toBe(true);
    await expect(b.subject.hasSession(1n)).resolves.toBe(true);
  });

  it('never exceeds maxSessions across groups and instances, and fills up to it exactly once calls are quiet', async () => {
    const prefix = freshPrefix();
    const maxSessions = 40;
    const a = storage(prefix, { shards: 12, maxSessions });
    const b = storage(prefix, { shards: 12, maxSessions });
    await Promise.all([a.ready(), b.ready()]);
    const outcomes = await Promise.allSettled(Array.from({ length: 400 }, (_, i) => (i % 2 === 0 ? a : b).createSession(spreadId(i))));
    const created = outcomes.filter((outcome) => outcome.status === 'fulfilled' && outcome.value === true).length;
    const refused = outcomes.filter((outcome) => outcome.status === 'rejected');
    for (const outcome of refused) expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(SessionLimitError);
    expect(created).toBeLessThanOrEqual(maxSessions);
    expect(created + refused.length).toBe(400);
    await expect(a.count()).resolves.toBe(created);
    // Quiet now: every unused quota can be reached, so creates succeed up to the limit and not one past it.
    let extra = 0;
    for (let i = 1000; i < 1100 && created + extra < maxSessions; i++) {
      await expect((i % 2 === 0 ? a : b).createSession(spreadId(i))).resolves.toBe(true);
      extra++;
    }
    await expect(a.count()).resolves.toBe(maxSessions);
    await expect(b.createSession(spreadId(2000))).rejects.toBeInstanceOf(SessionLimitError);
    // The quota adds up: what the groups hold plus the pool is the limit, and each group holds at least its sessions.
    const quotas = await Promise.all(a.keyGroups.map((keys) => raw.get(keys.quota)));
    const sizes = await Promise.all(a.keyGroups.map((keys) => raw.zCard(keys.sessions)));
    const pool = Number((await raw.get(`{${prefix}}:pool`)) ?? 0);
    expect(quotas.reduce((sum, quota) => sum + Number(quota ?? 0), 0) + pool).toBe(maxSessions);
    quotas.forEach((quota, i) => expect(Number(quota ?? 0)).toBeGreaterThanOrEqual(sizes[i]!));
    // Room again after a destroy, whichever group the next session falls in.
    const live = outcomes.findIndex((outcome) => outcome.status === 'fulfilled' && outcome.value === true);
    await expect(a.destroySession(spreadId(live))).resolves.toBe(true);
    await expect(b.createSession(spreadId(3000))).resolves.toBe(true);
  });
});
