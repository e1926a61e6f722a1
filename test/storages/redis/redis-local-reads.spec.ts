/**
 * The local replica behind RedisSessionStorage's lookups (localReads), against
 * a real redis-server: that it equals Redis's set after seeding while another
 * instance writes, the miss path and the one stale answer allowed, its rebuild
 * after trimmed entries and after a restart without data, and how many Redis
 * commands lookups cost (counted with INFO commandstats, never timed).
 */
import { SessionSubject } from 'nestjs-mtproto-sessions';
import { RedisSessionStorage, type RedisSessionStorageOptions } from 'nestjs-mtproto-sessions/redis';
import { ManualClock } from 'nestjs-mtproto-sessions/testing';
import { EventLog } from '../../support/event-log';
import { clientList, connectRaw, type ClientInfo, type RawClient } from '../../support/raw-redis';
import { RecordingLogger } from '../../support/recording-logger';
import { describeRedis, startRedisServer, type RedisServer } from '../../support/redis-server';
import { pollUntil, untilResolves } from '../../support/wait-until';

/** Calls per command since the last CONFIG RESETSTAT (a script's inner commands count too). */
async function commandCalls(raw: RawClient): Promise<Record<string, number>> {
  const text = String(await raw.sendCommand(['INFO', 'commandstats']));
  const calls: Record<string, number> = {};
  for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[match[1]!] = Number(match[2]);
  return calls;
}

/** Calls of the commands a lookup could send (ZSCORE, and the touch scripts). */
async function lookupCommands(raw: RawClient): Promise<{ zscore: number; scripts: number }> {
  const calls = await commandCalls(raw);
  return { zscore: calls.zscore ?? 0, scripts: (calls.evalsha ?? 0) + (calls.eval ?? 0) };
}

describeRedis('RedisSessionStorage local replica (localReads)', () => {
  let server: RedisServer;
  let raw: RawClient;
  let prefixes = 0;
  const open: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    server = await startRedisServer();
    raw = await connectRaw(server.url);
  }, 30_000);
  afterAll(async () => {
    if (raw.isOpen) raw.destroy();
    await server?.stop();
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((closable) => closable.close()));
    if (!raw.isOpen) raw = await connectRaw(server.url);
  });

  const freshPrefix = () => `replica-${process.pid}-${++prefixes}`;

  function instance(keyPrefix: string, instanceId: string, options: Partial<RedisSessionStorageOptions> = {}) {
    const logger = new RecordingLogger();
    const storage = new RedisSessionStorage({ url: server.url, keyPrefix, instanceId, logger, ...options });
    const subject = new SessionSubject(storage, { logger });
    const log = new EventLog();
    subject.subscribe(log);
    open.push(subject);
    return { storage, subject, log };
  }

  it('equals Redis\'s set after seeding while another instance writes, and answers its hits with no Redis command', async () => {
    const prefix = freshPrefix();
    const a = instance(prefix, 'a');
    await a.subject.ready();
    const universe = Array.from({ length: 3000 }, (_, i) => BigInt(i * 7919 - 10_000));
    // A steady base the scan must find, then writes that keep going while b seeds.
    await Promise.all(universe.slice(0, 2000).map((id) => a.subject.createSession(id)));
    let writing = true;
    const writer = (async () => {
      for (let round = 0; writing && round < 200; round++) {
        const id = universe[(round * 37) % universe.length]!;
        await a.subject.createSession(id);
        await a.subject.destroySession(universe[(round * 53 + 11) % universe.length]!);
        await a.subject.createSession(universe[(round * 29 + 5) % universe.length]!, 3n);
      }
    })();
    const b = instance(prefix, 'b');
    await b.subject.ready();
    await b.storage.localReadsReady();
    writing = false;
    await writer;
    // Once b has read a sentinel written after every other write, it has applied them all.
    await a.subject.createSession(1n, 99n);
    await b.log.until(() => b.log.lines.includes('created:1@99'), 'b to read the sentinel');

    const members = new Set(await raw.zRange(b.storage.redisKeys.sessions, 0, -1));
    await raw.sendCommand(['CONFIG', 'RESETSTAT']);
    const wrong: string[] = [];
    let absent = 0;
    for (const id of universe) {
      for (const authKeyId of [undefined, 3n]) {
        const member = authKeyId === undefined ? `${id}` : `${authKeyId}:${id}`;
        if (!members.has(member)) absent++;
        if ((await b.subject.hasSession(id, authKeyId)) !== members.has(member)) wrong.push(member);
      }
    }
    expect(wrong).toEqual([]);
    // Every live session was a replica hit: only the absent ones asked Redis.
    expect(await lookupCommands(raw)).toEqual({ zscore: absent, scripts: 0 });
  }, 60_000);

  it('finds on b a session created on a as soon as a\'s call resolved (the miss path asks Redis)', async () => {
    const prefix = freshPrefix();
    const a = instance(prefix, 'a');
    const b = instance(prefix, 'b');
    await Promise.all([a.subject.ready(), b.subject.ready(), b.storage.localReadsReady()]);
    for (let i = 0n; i < 200n; i++) {
      await a.subject.createSession(i);
      await expect(b.subject.hasSession(i)).resolves.toBe(true);
    }
  });

  it('answers true for a session removed in Redis until it reads the entry that says so, then false (the one stale answer)', async () => {
    const prefix = freshPrefix();
    // The lease and the verifier out of the way: this is about the stale answer. A verifier's check that read the sorted
    // set after the ZREM below would find the replica holding more than Redis, and rightly rebuild it first.
    const b = instance(prefix, 'b', { maxStaleness: 60_000, verifyInterval: 60_000 });
    await Promise.all([b.subject.ready(), b.storage.localReadsReady()]);
    await b.subject.createSession(5n);
    // The create resolves from its reply; the replica answers once the reader has first heard from Redis (its lease), which
    // may come later: b's first read waits for its own origin's name, which it does not know yet.
    await pollUntil(() => b.storage.healthDetails().localReadsWithinLease === true, 'b\'s replica to answer locally');
    const { sessions, events, sequence } = b.storage.redisKeys;
    // As if another instance destroyed it and b had not read the entry yet.
    await raw.zRem(sessions, '5');
    await expect(b.subject.hasSession(5n)).resolves.toBe(true);
    const n = Number(await raw.get(sequence)) + 1;
    await raw.multi()
      .addCommand(['XADD', events, '*', 't', 'd', 's', '5', 'o', 'other', 'n', String(n)])
      .addCommand(['SET', sequence, String(n)])
      .exec();
    await b.log.until(() => b.log.lines.includes('destroyed:5'), 'b to read the destroy');
    await expect(b.subject.hasSession(5n)).resolves.toBe(false);
  });

  it('rebuilds after entries were trimmed unread: a session destroyed in the gap is no longer answered', async () => {
    const prefix = freshPrefix();
    const b = instance(prefix, 'b');
    await Promise.all([b.subject.ready(), b.storage.localReadsReady()]);
    await b.subject.createSession(1n);
    await b.subject.createSession(2n);
    const { sessions, events, sequence } = b.storage.redisKeys;
    const readerId = await readerConnection(raw);
    // One MULTI: b's reader is killed, 2 is destroyed (entry and all) and the entry trimmed before b can read it.
    const n = Number(await raw.get(sequence)) + 1;
    await raw.multi()
      .addCommand(['CLIENT', 'KILL', 'ID', readerId])
      .addCommand(['ZREM', sessions, '2'])
      .addCommand(['XADD', events, '*', 't', 'd', 's', '2', 'o', 'w', 'n', String(n)])
      .addCommand(['SET', sequence, String(n)])
      .addCommand(['XTRIM', events, 'MAXLEN', '0'])
      .exec();
    await b.log.until(() => b.log.missed.length === 1, 'b to report the gap');
    await b.storage.localReadsReady();
    await raw.sendCommand(['CONFIG', 'RESETSTAT']);
    await expect(b.subject.hasSession(1n)).resolves.toBe(true);
    await expect(b.subject.hasSession(2n)).resolves.toBe(false);
    // 1 from the rebuilt replica, 2 asked of Redis.
    expect(await lookupCommands(raw)).toEqual({ zscore: 1, scripts: 0 });
  });

  it('rebuilds after Redis restarted without its data: sessions it lost are no longer answered', async () => {
    const prefix = freshPrefix();
    const b = instance(prefix, 'b');
    await Promise.all([b.subject.ready(), b.storage.localReadsReady()]);
    await b.subject.createSession(1n);
    raw.destroy();
    await server.restart();
    raw = await connectRaw(server.url);
    await b.log.until(() => b.log.missed.length === 1, 'b to report the restart');
    await b.storage.localReadsReady();
    await expect(b.subject.hasSession(1n)).resolves.toBe(false);
    await expect(b.subject.createSession(1n)).resolves.toBe(true);
    await raw.sendCommand(['CONFIG', 'RESETSTAT']);
    await expect(b.subject.hasSession(1n)).resolves.toBe(true);
    expect(await lookupCommands(raw)).toEqual({ zscore: 0, scripts: 0 });
  }, 30_000);

  it('with idleTimeout: lookups cost no command until a touch is due, then one batched script, at most one per session in flight (manual clock)', async () => {
    const clock = new ManualClock();
    const idleTimeout = 8000;
    const options = { idleTimeout, sweepInterval: 3_600_000, clock: clock.now };
    const prefix = freshPrefix();
    const a = instance(prefix, 'a', options);
    const b = instance(prefix, 'b', options);
    await Promise.all([a.subject.ready(), b.subject.ready(), b.storage.localReadsReady()]);
    const ids = Array.from({ length: 100 }, (_, i) => BigInt(i) * 1_000_003n);
    await Promise.all(ids.map((id) => a.subject.createSession(id)));
    await b.log.untilCount(ids.length);

    await raw.sendCommand(['CONFIG', 'RESETSTAT']);
    // Fresh deadlines (idleTimeout + slack ahead): 10 lookups each, no command at all.
    for (let round = 0; round < 10; round++) {
      for (const id of ids) await expect(b.subject.hasSession(id)).resolves.toBe(true);
    }
    expect(await lookupCommands(raw)).toEqual({ zscore: 0, scripts: 0 });

    // Past the slack, every deadline is due for a touch: the lookups answer at once and the touches go out together.
    clock.advance(idleTimeout / 8 + 1);
    const answers = await Promise.all(ids.flatMap((id) => [b.subject.hasSession(id), b.subject.hasSession(id)]));
    expect(answers.every((live) => live)).toBe(true);
    // One script for the 100 touches (each a ZSCORE inside), none repeated for the second lookup of each.
    await a.subject.createSession(-1n);
    await b.log.until(() => b.log.lines.includes('created:-1'), 'b to read a sentinel written after the touches');
    const afterTouches = await lookupCommands(raw);
    // The touches' 100 ZSCOREs (a create without a limit runs none: ZADD NX); the touch script and the create script.
    expect(afterTouches).toEqual({ zscore: ids.length, scripts: 2 });
    // Confirmed: the next lookups are hits again.
    await raw.sendCommand(['CONFIG', 'RESETSTAT']);
    for (const id of ids) await expect(b.subject.hasSession(id)).resolves.toBe(true);
    expect(await lookupCommands(raw)).toEqual({ zscore: 0, scripts: 0 });
  });

  it('with idleTimeout: a lookup whose known deadline has passed asks Redis, which another instance kept the session alive in', async () => {
    const clock = new ManualClock();
    const idleTimeout = 8000;
    const options = { idleTimeout, sweepInterval: 3_600_000, clock: clock.now };
    const prefix = freshPrefix();
    const a = instance(prefix, 'a', options);
    const b = instance(prefix, 'b', options);
    await Promise.all([a.subject.ready(), b.subject.ready(), b.storage.localReadsReady(), a.storage.localReadsReady()]);
    await a.subject.createSession(7n);
    await b.log.until(() => b.log.lines.includes('created:7'), 'b to read created:7');
    // a keeps it alive (its lookups touch it); b does not look at it meanwhile.
    for (let step = 0; step < 4; step++) {
      clock.advance(idleTimeout / 2);
      await expect(a.storage.hasSession(7n)).resolves.toBe(true);
      await a.subject.createSession(BigInt(100 + step));
    }
    await b.log.until(() => b.log.lines.includes('created:103'), 'b to read a\'s last write');
    await raw.sendCommand(['CONFIG', 'RESETSTAT']);
    await expect(b.subject.hasSession(7n)).resolves.toBe(true);
    expect(await lookupCommands(raw)).toEqual({ zscore: 1, scripts: 1 });
    await raw.sendCommand(['CONFIG', 'RESETSTAT']);
    await expect(b.subject.hasSession(7n)).resolves.toBe(true);
    expect(await lookupCommands(raw)).toEqual({ zscore: 0, scripts: 0 });
  });

  it('records origins as short codes, and events still carry each instance\'s own instanceId, also after a restart gives new codes', async () => {
    const prefix = freshPrefix();
    const idA = 'a-0b3d6f8e-5a1c-4e2b-9f7d-1c2b3a4d5e6f';
    const a = instance(prefix, idA);
    const b = instance(prefix, 'b');
    await Promise.all([a.subject.ready(), b.subject.ready()]);
    await a.subject.createSession(1n);
    await b.log.until(() => b.log.lines.includes('created:1'), 'b to read created:1');
    const [entry] = (await raw.xRange(a.storage.redisKeys.events, '-', '+')) ?? [];
    expect(entry!.message).not.toHaveProperty('o');
    expect(entry!.message.i).toMatch(/^\d+$/);
    expect(b.log.events.map((event) => event.origin)).toEqual([idA]);

    raw.destroy();
    await server.restart();
    raw = await connectRaw(server.url);
    await Promise.all([a, b].map((peer) => peer.log.until(() => peer.log.missed.length === 1, 'the restart to be reported')));
    // Nothing announces that a storage's command connection is back: ping() is retried, bounded.
    await Promise.all([a, b].map((peer) => untilResolves(() => peer.storage.ping(), `${peer.storage.instanceId}'s ping() to succeed`, { intervalMs: 25 })));
    // b registers first this time, so the codes are not the ones before the restart.
    await expect(b.subject.createSession(2n)).resolves.toBe(true);
    await expect(a.subject.createSession(3n)).resolves.toBe(true);
    for (const peer of [a, b]) {
      await peer.log.until(() => peer.log.lines.includes('created:3'), 'created:3');
      expect(peer.log.events.map((event) => `${event.sessionId}@${event.origin}`)).toEqual([`1@${idA}`, '2@b', `3@${idA}`]);
    }
  }, 30_000);

  it('with localReads: false asks Redis on every lookup, as before', async () => {
    const prefix = freshPrefix();
    const a = instance(prefix, 'a', { localReads: false });
    await a.subject.ready();
    await a.subject.createSession(1n);
    await raw.sendCommand(['CONFIG', 'RESETSTAT']);
    for (let i = 0; i < 10; i++) await expect(a.subject.hasSession(1n)).resolves.toBe(true);
    expect(await lookupCommands(raw)).toEqual({ zscore: 10, scripts: 0 });
    expect(() => new RedisSessionStorage({ url: server.url, localReads: 'yes' as unknown as boolean })).toThrow(/localReads must be a boolean/);
  });
});

/** The id of the one reader connection on the server (blocked in XREAD); polled, bounded: Redis announces no such event. */
async function readerConnection(raw: RawClient): Promise<string> {
  let readers: ClientInfo[] = [];
  await pollUntil(
    async () => (readers = (await clientList(raw)).filter((client) => client.cmd === 'xread')).length === 1,
    () => `a single reader connection in XREAD; found ${readers.length}`,
  );
  return readers[0]!.id;
}
