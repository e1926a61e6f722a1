/**
 * Fault tests for RedisSessionStorage against real redis-server processes:
 * reader connections killed mid-burst, Redis stopped and restarted, entries
 * the storage never wrote, trimmed gaps, racing creates, and Redis dying
 * under calls in flight. No Redis mocks; every server is a throwaway
 * process on a free loopback port (test/support/redis-server.ts).
 */
import {
  SessionStorageTimeoutError,
  SessionStorageUnavailableError,
  SessionSubject,
  type SessionEvent,
} from 'nestjs-mtproto-sessions';
import { RedisSessionStorage, type RedisSessionStorageOptions } from 'nestjs-mtproto-sessions/redis';
import { INT64_MAX, INT64_MIN } from '../../../src/core/session-id';
import { EventLog, eventLine } from '../../support/event-log';
import { pool } from '../../support/pool';
import { clientList, connectRaw, untilClients, type RawClient } from '../../support/raw-redis';
import { stateOf } from '../../support/promise-state';
import { RecordingLogger } from '../../support/recording-logger';
import { REDIS_CLIENT_KINDS } from '../../support/redis-client-kinds';
import { describeRedis, startRedisServer, type RedisServer } from '../../support/redis-server';
import { spreadId } from '../../support/session-test-helpers';
import { Conditions, pollUntil, untilResolves } from '../../support/wait-until';

/** Connections a storage duplicated from its client (its reader connections), so a test can see which it left open. */
interface DuplicateTracker {
  readonly clients: { readonly isOpen: boolean; destroy(): unknown }[];
  untilCount(count: number, timeoutMs?: number): Promise<void>;
}

/** The pace of a fault injector, whose loop is bounded; waits for a state use test/support/wait-until. */
function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Reader connections: the ones whose last command is XREAD (blocked in it, or between two). */
async function readerIds(raw: RawClient): Promise<string[]> {
  return (await clientList(raw)).filter((client) => client.cmd === 'xread').map((client) => client.id);
}

/** The event a stream entry records, as EventLog lines it, with its origin. */
function entryLine(message: Record<string, string>, origins: Record<string, string>): string {
  const type = message.t === 'c' ? 'created' : 'destroyed';
  const scope = message.a === undefined ? '' : `@${message.a}`;
  const reason = message.t === 'x' ? '/expired' : '';
  // Origins are interned: the entry names a code, the origins hash the instance id.
  const origin = message.i === undefined ? message.o : origins[`c:${message.i}`];
  return `${type}:${message.s}${scope}${reason}#${origin}`;
}

function lineWithOrigin(event: SessionEvent): string {
  return `${eventLine(event)}#${event.origin}`;
}

function settleTimes<T>(calls: Record<string, () => Promise<T>>): Promise<{ name: string; ms: number; outcome: PromiseSettledResult<T> }[]> {
  return Promise.all(Object.entries(calls).map(async ([name, call]) => {
    const started = performance.now();
    const [outcome] = await Promise.allSettled([call()]);
    return { name, ms: performance.now() - started, outcome: outcome! };
  }));
}

/** A session's part of an EventLog line (`created:5@7/expired#a` -> `5@7`). */
function sessionOf(line: string): string {
  return line.slice(line.indexOf(':') + 1).replace(/[/#].*$/, '');
}

/**
 * `lines` are `expected` in order: exactly, with one key group (one stream);
 * with several, per session (no order is promised across groups).
 */
function expectInOrder(lines: string[], expected: string[], shards: number): void {
  if (shards === 1) {
    expect(lines).toEqual(expected);
    return;
  }
  expect([...lines].sort()).toEqual([...expected].sort());
  for (const session of new Set(expected.map(sessionOf))) {
    expect(lines.filter((line) => sessionOf(line) === session)).toEqual(expected.filter((line) => sessionOf(line) === session));
  }
}

// On standalone Redis one reader per instance reads every key group's stream, so the reader counts do not depend on shards.
for (const kind of REDIS_CLIENT_KINDS) for (const shards of [1, 12]) describeRedis(`RedisSessionStorage under faults, shards: ${shards} (real redis-server; ${kind.name})`, () => {
  let server: RedisServer;
  let raw: RawClient;
  let prefixCounter = 0;
  const open: { close(): Promise<void> }[] = [];
  const trackers: DuplicateTracker[] = [];

  beforeEach(async () => {
    server = await startRedisServer();
    raw = await connectRaw(server.url);
  }, 30_000);

  afterEach(async () => {
    // A test that failed midway may have left the server paused, which would hold every close.
    if (raw.isReady) await raw.sendCommand(['CLIENT', 'UNPAUSE']).catch(() => undefined);
    await Promise.allSettled(open.splice(0).map((closable) => closable.close()));
    // Whatever a storage left open (see the leak test) would keep retrying and keep jest from exiting.
    for (const tracker of trackers.splice(0)) {
      for (const client of tracker.clients) if (client.isOpen) client.destroy();
    }
    if (raw.isOpen) raw.destroy();
    await server.stop();
  }, 30_000);

  function freshPrefix(): string {
    return `faults-${shards}-${process.pid}-${++prefixCounter}`;
  }
  /** Tests of one stream's mechanics (entries written by hand, trims): run on the one-group layout. */
  const itOneStream = shards === 1 ? it : it.skip;

  /**
   * Records every connection the storage duplicates from its client (only its
   * event reader does). Instrumentation, not a mock: the connections talk to
   * the real server. It lets a test see connections the storage never closed,
   * and lets afterEach destroy them so jest can exit.
   */
  function trackDuplicates(storage: RedisSessionStorage): DuplicateTracker {
    type Duplicating = { duplicate(overrides?: object): DuplicateTracker['clients'][number] };
    // The client exists once the storage has loaded its driver; patched before the reader's first connect, which waits for the same promise.
    const created = (storage as unknown as { connection: { created: Promise<Duplicating> } }).connection.created;
    const clients: DuplicateTracker['clients'][number][] = [];
    const conditions = new Conditions();
    void created.then((client) => {
      const original = client.duplicate.bind(client);
      client.duplicate = (overrides?: object) => {
        const duplicate = original(overrides);
        clients.push(duplicate);
        conditions.wake();
        return duplicate;
      };
    });
    const tracker: DuplicateTracker = {
      clients,
      untilCount: (count, timeoutMs) => conditions.until(() => clients.length >= count, () => `${count} reader connections opened (saw ${clients.length})`, timeoutMs),
    };
    trackers.push(tracker);
    return tracker;
  }

  /** One application instance: a subject over its own storage, sharing `keyPrefix` with its peers. */
  function instance(keyPrefix: string, instanceId: string, options: Partial<RedisSessionStorageOptions> = {}) {
    const logger = new RecordingLogger();
    const { options: source, release } = kind.connect(server.url);
    const storage = new RedisSessionStorage({ ...source, keyPrefix, instanceId, logger, shards, ...options });
    // Before the subject attaches: the reader opens its first connection in attach().
    const readers = trackDuplicates(storage);
    const subject = new SessionSubject(storage, { logger });
    const log = new EventLog();
    subject.subscribe(log);
    open.push({ close: () => subject.close().finally(release) });
    return { storage, subject, log, logger, readers, release, id: instanceId };
  }
  type Instance = ReturnType<typeof instance>;

  /**
   * After the instances closed: none of their reader connections is still open,
   * and on the server only this test's raw client is left (a bounded poll:
   * disconnects are not announced).
   */
  async function expectOnlyRawClientLeft(closed: Instance[]): Promise<void> {
    // The application closes a client it owns once its storage is closed.
    await Promise.all(closed.map((peer) => peer.release()));
    let others = 0;
    // The expectation below reports what is left if they do not all go.
    await pollUntil(async () => (others = (await clientList(raw)).length - 1) === 0, 'the other clients to disconnect', { timeoutMs: 1000 }).catch(() => undefined);
    const leftOpen = closed.flatMap((peer) => peer.readers.clients.flatMap((client, index) => (client.isOpen ? [`${peer.id}'s reader connection #${index + 1}`] : [])));
    expect({ leftOpen, othersConnected: others }).toEqual({ leftOpen: [], othersConnected: 0 });
  }

  /** A transition every instance must see; once they all have, each has seen everything written before it (one stream, read in order). */
  async function sentinel(writer: Instance, everyone: Instance[], id: bigint): Promise<void> {
    await expect(writer.subject.createSession(id, INT64_MAX)).resolves.toBe(true);
    const line = `created:${id}@${INT64_MAX}`;
    await Promise.all(everyone.map((peer) => peer.log.until(() => peer.log.lines.includes(line), `${peer.id} to see ${line}`)));
  }

  it('delivers each of 10,000 transitions exactly once, in stream order, to every instance while readers are killed every ~50 ms', async () => {
    const prefix = freshPrefix();
    const instances = ['a', 'b', 'c'].map((id) => instance(prefix, id));
    await Promise.all(instances.map((peer) => peer.storage.ping()));
    await untilClients(raw, (clients) => clients.filter((client) => client.cmd === 'xread').length === 3, 'three readers blocked in XREAD');

    const sessions = 5000; // a create and a destroy each: 10,000 transitions
    const failures: string[] = [];
    const unexpected: string[] = [];
    let done = false;
    let kills = 0;

    // The fault injector: kills every reader connection (cmd=xread) about every 50 ms until the burst is done, bounded at 45 s.
    const killer = (async () => {
      const deadline = Date.now() + 45_000;
      while (!done && Date.now() < deadline) {
        for (const id of await readerIds(raw)) kills += Number(await raw.sendCommand(['CLIENT', 'KILL', 'ID', id]));
        await pause(50);
      }
    })();

    const started = performance.now();
    try {
      await pool(sessions, 200, async (i) => {
        const id = spreadId(i);
        const authKeyId = i % 4 === 0 ? spreadId(i, 0xd1b54a32d192ed03n) : undefined;
        const creator = instances[i % 3]!;
        const destroyer = instances[(i + 1) % 3]!;
        try {
          if ((await creator.subject.createSession(id, authKeyId)) !== true) unexpected.push(`create ${id} on ${creator.id} resolved false`);
          if ((await destroyer.subject.destroySession(id, authKeyId)) !== true) unexpected.push(`destroy ${id} on ${destroyer.id} resolved false`);
        } catch (error) {
          failures.push(`session ${id}: ${String(error)}`);
        }
      });
    } finally {
      done = true;
      await killer;
    }
    const burstMs = performance.now() - started;

    expect(failures).toEqual([]);
    expect(unexpected).toEqual([]);
    // The injector really interfered: readers were killed many times during the burst.
    expect(kills).toBeGreaterThanOrEqual(5);

    await sentinel(instances[0]!, instances, 7n);
    const { storage } = instances[0]!;
    const streams = await Promise.all(storage.keyGroups.map(async (keys) => {
      const origins = (await raw.hGetAll(keys.origins)) as Record<string, string>;
      return ((await raw.xRange(keys.events, '-', '+')) ?? []).map((entry) => entryLine(entry.message as Record<string, string>, origins));
    }));
    expect(streams.reduce((sum, stream) => sum + stream.length, 0)).toBe(2 * sessions + 1);
    const groupOf = (event: SessionEvent) => storage.keyGroups.indexOf(storage.keysOf(event.sessionId, event.authKeyId));
    for (const peer of instances) {
      // Other groups' readers may still be behind the sentinel's: wait until every event is in.
      await peer.log.untilCount(2 * sessions + 1);
      // Exactly each group's stream, in its order: every event once, none missing, none repeated, per-session order kept.
      const seen = peer.log.events.map(lineWithOrigin);
      expect(seen.length).toBe(2 * sessions + 1);
      expect(new Set(seen).size).toBe(seen.length);
      streams.forEach((stream, group) => expect([group, peer.log.events.filter((event) => groupOf(event) === group).map(lineWithOrigin)]).toEqual([group, stream]));
      expect(peer.log.missed).toEqual([]);
      expect(peer.logger.warnings.filter((line) => /missed/i.test(line))).toEqual([]);
      expect(peer.logger.errors).toEqual([]);
    }
    // The readers noticed: each outage of a reader is logged once (a kill during a first read after reconnecting adds none).
    const lost = instances.reduce((sum, peer) => sum + peer.logger.warnings.filter((line) => /reader lost its Redis connection/.test(line)).length, 0);
    expect(lost).toBeGreaterThan(0);
    expect(lost).toBeLessThanOrEqual(kills);
    // Well inside the test's budget: 10,000 transitions take about 2 s here.
    expect(burstMs).toBeLessThan(40_000);

  }, 60_000);

  it('fails every call that needs Redis within commandTimeout while Redis is stopped (the replica still answers lookups of live sessions), and recovers after a restart without a new storage', async () => {
    const commandTimeout = 500;
    const margin = 1000;
    const prefix = freshPrefix();
    const a = instance(prefix, 'a', { commandTimeout });
    const b = instance(prefix, 'b', { commandTimeout });
    await Promise.all([a.subject.ready(), b.subject.ready()]);
    await expect(a.subject.createSession(1n)).resolves.toBe(true);
    await b.log.until(() => b.log.lines.includes('created:1'), 'b to see created:1');
    await Promise.all([a.storage.localReadsReady(), b.storage.localReadsReady()]);

    await server.stop();

    // Sessions the replica holds as live are still answered; every call that needs Redis fails, bounded.
    const replicaAnswers = async (peer: Instance) => {
      await expect(peer.subject.hasSession(1n)).resolves.toBe(true);
    };

    const assertAllFailBounded = async (peer: Instance, round: string) => {
      const outcomes = await settleTimes<unknown>({
        createSession: () => peer.subject.createSession(10n),
        hasSession: () => peer.subject.hasSession(2n),
        destroySession: () => peer.subject.destroySession(1n, 3n),
        count: () => peer.storage.count(),
        ping: () => peer.storage.ping(),
      });
      for (const { name, ms, outcome } of outcomes) {
        const context = `${round}: ${name} on ${peer.id} after ${Math.round(ms)} ms`;
        expect([context, outcome.status]).toEqual([context, 'rejected']);
        const error = (outcome as PromiseRejectedResult).reason as Error;
        expect([context, error]).toEqual([context, expect.any(SessionStorageUnavailableError)]);
        expect(ms).toBeLessThan(commandTimeout + margin);
        // The message names the operation and why: the timeout, or the underlying failure (also kept as cause).
        expect(error.message).toContain(name);
        if (error instanceof SessionStorageTimeoutError) {
          expect(error.message).toContain(`${commandTimeout} ms`);
        } else {
          expect(error.cause).toBeInstanceOf(Error);
          expect(error.message).toContain((error.cause as Error).message);
        }
      }
    };

    // Round 1: at once, before the clients may even have noticed the socket close.
    await Promise.all([assertAllFailBounded(a, 'right after stop'), assertAllFailBounded(b, 'right after stop')]);
    await Promise.all([replicaAnswers(a), replicaAnswers(b)]);
    // Round 2: once each storage has reported the outage (its client is retrying by then).
    await Promise.all([a, b].map((peer) => peer.logger.untilWarning(/lost its connection/)));
    await Promise.all([assertAllFailBounded(a, 'during the outage'), assertAllFailBounded(b, 'during the outage')]);
    await Promise.all([replicaAnswers(a), replicaAnswers(b)]);

    await server.restart();
    raw = await connectRaw(server.url);
    // Nothing in the public API announces "Redis is back": retry ping(), bounded.
    for (const peer of [a, b]) await untilResolves(() => peer.storage.ping(), `${peer.id}'s ping() to succeed`, { intervalMs: 25 });
    await Promise.all([a, b].map((peer) => peer.logger.untilWarning(/reconnected after \d+ ms/)));
    // Nor does anything announce that a reader is back: wait until both are blocked in XREAD again.
    await untilClients(raw, (clients) => clients.filter((client) => client.cmd === 'xread').length === 2, 'both readers back in XREAD');

    // The restarted server kept nothing (no persistence): session 1 is gone, and new transitions flow to both.
    await expect(b.subject.hasSession(1n)).resolves.toBe(false);
    await expect(a.subject.createSession(20n)).resolves.toBe(true);
    await expect(b.subject.createSession(20n)).resolves.toBe(false);
    await expect(b.subject.destroySession(20n)).resolves.toBe(true);
    await expect(a.subject.createSession(21n, -5n)).resolves.toBe(true);
    await expect(b.storage.count()).resolves.toBe(1);
    const expected = ['created:1', 'created:20', 'destroyed:20', 'created:21@-5'];
    for (const peer of [a, b]) {
      await peer.log.until(() => peer.log.events.length >= expected.length, `${peer.id} to see ${expected.length} events`);
      expectInOrder(peer.log.lines, expected, shards);
      // Session 1 vanished with the server's data, unannounced: each instance is told, once, that its state may be
      // stale, also when both find the loss at once (its own finding and the other's loss entry are one loss).
      expect(peer.log.missed).toHaveLength(1);
      expect(peer.logger.warnings.filter((line) => /went back to sequence/.test(line))).toHaveLength(1);
    }
  }, 30_000);

  it('leaves no connection behind when its reader connection is killed', async () => {
    // A killed reader connection is replaced by a new one; the old client must
    // not reconnect on its own beside it (node-redis starts reconnecting at
    // once, and destroy() during that connect attempt does not stop it).
    const a = instance(freshPrefix(), 'a');
    await a.storage.ping();
    for (let kill = 1; kill <= 5; kill++) {
      await untilClients(raw, (clients) => clients.some((client) => client.cmd === 'xread'), 'the reader in XREAD');
      for (const id of await readerIds(raw)) await raw.sendCommand(['CLIENT', 'KILL', 'ID', id]);
      await a.readers.untilCount(kill + 1);
    }
    await expect(a.subject.createSession(1n)).resolves.toBe(true);
    await a.subject.close();
    await expectOnlyRawClientLeft([a]);
  }, 30_000);

  it('closes every reader connection it opened, even those opened while Redis was down', async () => {
    // Reader connect attempts during an outage are given up on by the reader's
    // watchdog after commandTimeout, but the duplicated client itself keeps
    // retrying (node-redis reconnectStrategy) and is never destroyed.
    const a = instance(freshPrefix(), 'a', { commandTimeout: 200 });
    await a.storage.ping();
    await untilClients(raw, (clients) => clients.some((client) => client.cmd === 'xread'), 'the reader in XREAD');
    expect(a.readers.clients).toHaveLength(1);

    await server.stop();
    // 1: the first connection; 2: the attempt after it broke; 3: an attempt made only once 2 was given up on.
    await a.readers.untilCount(3);
    await server.restart();
    raw = await connectRaw(server.url);
    await untilClients(raw, (clients) => clients.some((client) => client.cmd === 'xread'), 'the reader back in XREAD');
    await a.subject.close();

    await expectOnlyRawClientLeft([a]);
  }, 30_000);

  itOneStream('skips entries it did not write, one warning each naming the entry, and delivers the valid ones in order', async () => {
    const prefix = freshPrefix();
    const a = instance(prefix, 'a');
    const b = instance(prefix, 'b');
    await Promise.all([a.subject.ready(), b.subject.ready()]);
    const events = a.storage.redisKeys.events;
    const xadd = (...fields: string[]) => raw.sendCommand(['XADD', events, '*', ...fields]) as Promise<string>;

    const malformed: Record<string, string> = {};
    await expect(a.subject.createSession(1n)).resolves.toBe(true);
    malformed['unknown type'] = await xadd('t', 'z', 's', '2', 'o', 'a');
    await expect(b.subject.destroySession(1n)).resolves.toBe(true);
    malformed['missing s'] = await xadd('t', 'c', 'o', 'b');
    await expect(b.subject.createSession(INT64_MIN, 5n)).resolves.toBe(true);
    malformed['s above int64'] = await xadd('t', 'c', 's', '9223372036854775808', 'o', 'a');
    malformed['s below int64'] = await xadd('t', 'd', 's', '-9223372036854775809', 'o', 'a');
    malformed['s not canonical'] = await xadd('t', 'c', 's', '007', 'o', 'a');
    malformed['non-numeric a'] = await xadd('t', 'c', 's', '3', 'a', 'abc', 'o', 'b');
    await expect(a.subject.createSession(INT64_MAX)).resolves.toBe(true);
    malformed['missing o'] = await xadd('t', 'c', 's', '4');
    malformed['empty o'] = await xadd('t', 'c', 's', '4', 'o', '');
    malformed['empty field'] = await xadd('', '');
    await expect(a.subject.destroySession(INT64_MIN, 5n)).resolves.toBe(true);
    await sentinel(b, [a, b], 99n);

    const expected = ['created:1', 'destroyed:1', `created:${INT64_MIN}@5`, `created:${INT64_MAX}`, `destroyed:${INT64_MIN}@5`, `created:99@${INT64_MAX}`];
    for (const peer of [a, b]) {
      expect(peer.log.lines).toEqual(expected);
      for (const [what, id] of Object.entries(malformed)) {
        const naming = peer.logger.warnings.filter((line) => line.includes(id));
        expect([what, peer.id, naming.length]).toEqual([what, peer.id, 1]);
        expect(naming[0]).toMatch(/malformed/);
      }
      expect(peer.logger.warnings).toHaveLength(Object.keys(malformed).length);
      expect(peer.logger.errors).toEqual([]);
      expect(peer.log.missed).toEqual([]);
    }
    // Nothing crashed: both instances still work.
    await expect(b.subject.createSession(100n)).resolves.toBe(true);
    await a.log.until(() => a.log.lines.includes('created:100'), 'a to see created:100');
  }, 30_000);

  itOneStream('reports entries trimmed while the reader was disconnected (SessionEventsMissed, a warning) and delivers on', async () => {
    const prefix = freshPrefix();
    const b = instance(prefix, 'b');
    // The writer has no subject, so no reader: the only reader on the server is b's.
    const writer = new RedisSessionStorage({ url: server.url, keyPrefix: prefix, instanceId: 'w', logger: new RecordingLogger() });
    open.push(writer);
    await b.storage.ping();
    await expect(writer.createSession(1n)).resolves.toBe(true);
    await b.log.until(() => b.log.lines.includes('created:1'), 'b to see created:1');
    const [lastSeen] = (await raw.xRange(b.storage.redisKeys.events, '-', '+')) ?? [];
    await untilClients(raw, (clients) => clients.filter((client) => client.cmd === 'xread').length === 1, "b's reader in XREAD");
    const [readerId] = await readerIds(raw);

    // Deterministic: one MULTI kills b's reader, appends three entries and trims
    // the stream to nothing. Redis runs the whole transaction before any other
    // client's command and closes the killed connection only afterwards (a
    // reply to a client marked for closing is never written), so b's reader
    // cannot read the entries in between: they are gone when it reconnects, and
    // the sequence numbers (entries carry n, the key holds the last) show it.
    const events = b.storage.redisKeys.events;
    const replies = await raw.multi()
      .addCommand(['CLIENT', 'KILL', 'ID', readerId!])
      .addCommand(['XADD', events, '*', 't', 'c', 's', '2', 'o', 'w', 'n', '2'])
      .addCommand(['XADD', events, '*', 't', 'c', 's', '3', 'o', 'w', 'n', '3'])
      .addCommand(['XADD', events, '*', 't', 'c', 's', '4', 'o', 'w', 'n', '4'])
      .addCommand(['SET', b.storage.redisKeys.sequence, '4'])
      .addCommand(['XTRIM', events, 'MAXLEN', '0'])
      .exec();
    expect(replies[0]).toBe(1);
    expect(replies[5]).toBe(4);

    // Delivery goes on: a transition after the gap reaches b. The reader checks
    // for a gap when it reconnects, before it reads on, so any notice is out by then.
    await expect(writer.createSession(5n)).resolves.toBe(true);
    await b.log.until(() => b.log.lines.includes('created:5'), 'b to see created:5 after the gap');

    expect(b.log.lines).toEqual(['created:1', 'created:5']);
    expect(b.log.missed).toHaveLength(1);
    expect(b.log.missed[0]).toMatchObject({ lastSeen: lastSeen!.id, origin: 'b' });
    expect(b.logger.warnings.filter((line) => /Session events were missed/.test(line) && line.includes(lastSeen!.id))).toHaveLength(1);
  }, 30_000);

  itOneStream("reports entries trimmed by the storage's own MAXLEN while a reader was locked out", async () => {
    const prefix = freshPrefix();
    const b = instance(prefix, 'b');
    const writer = new RedisSessionStorage({ url: server.url, keyPrefix: prefix, instanceId: 'w', streamMaxLength: 10, logger: new RecordingLogger() });
    open.push(writer);
    // MAXLEN ~ trims whole stream nodes only; nodes of 5 entries make it trim at this scale.
    await raw.sendCommand(['CONFIG', 'SET', 'stream-node-max-entries', '5']);
    await b.storage.ping();
    await expect(writer.createSession(1n)).resolves.toBe(true);
    await b.log.until(() => b.log.lines.includes('created:1'), 'b to see created:1');
    const [lastSeen] = (await raw.xRange(b.storage.redisKeys.events, '-', '+')) ?? [];
    await untilClients(raw, (clients) => clients.filter((client) => client.cmd === 'xread').length === 1, "b's reader in XREAD");
    const [readerId] = await readerIds(raw);

    // Lock b's reader out: no new connection is accepted while maxclients is
    // below the clients connected (the raw client and the writer stay
    // connected), and the same MULTI kills b's reader, so it cannot reconnect
    // until the test lets it.
    const connected = (await clientList(raw)).length;
    await raw.multi()
      .addCommand(['CONFIG', 'SET', 'maxclients', String(connected - 1)])
      .addCommand(['CLIENT', 'KILL', 'ID', readerId!])
      .exec();
    await b.logger.untilWarning(/reader lost its Redis connection/);
    for (let i = 0; i < 50; i++) await expect(writer.createSession(BigInt(100 + i))).resolves.toBe(true);
    // The writer's own XADD MAXLEN ~ 10 trimmed the stream while b could not read it.
    expect(await raw.xLen(b.storage.redisKeys.events)).toBeLessThan(50);
    await raw.sendCommand(['CONFIG', 'SET', 'maxclients', '10000']);

    // Delivery goes on after the gap (a notice, if any, comes before what is read after it).
    await expect(writer.createSession(7n)).resolves.toBe(true);
    await b.log.until(() => b.log.lines.includes('created:7'), 'b to see created:7 after the gap');
    // What survived the trim after the gap is delivered, in order, then what came after.
    const lines = b.log.lines;
    expect(lines[0]).toBe('created:1');
    expect(lines.at(-1)).toBe('created:7');
    const survivors = lines.slice(1, -1);
    expect(survivors.length).toBeLessThan(50);
    expect(survivors).toEqual(Array.from({ length: survivors.length }, (_, i) => `created:${150 - survivors.length + i}`));
    // Of created:100 to created:149, the first ones were trimmed unread: b must have been told, once.
    expect(b.log.missed).toHaveLength(1);
    expect(b.log.missed[0]).toMatchObject({ lastSeen: lastSeen!.id, origin: 'b' });
    expect(b.logger.warnings.filter((line) => /Session events were missed/.test(line))).toHaveLength(1);
  }, 30_000);

  itOneStream('reports entries trimmed before a connected reader read them (not only after a reconnect or a full batch)', async () => {
    const prefix = freshPrefix();
    const b = instance(prefix, 'b');
    await b.storage.ping();
    await untilClients(raw, (clients) => clients.filter((client) => client.cmd === 'xread').length === 1, "b's reader in XREAD");
    const writer = new RedisSessionStorage({ url: server.url, keyPrefix: prefix, instanceId: 'w', logger: new RecordingLogger() });
    open.push(writer);
    await expect(writer.createSession(1n)).resolves.toBe(true);
    await b.log.until(() => b.log.lines.includes('created:1'), 'b to see created:1');

    // A reader is behind whenever entries are added faster than it reads (any
    // time between two XREADs, or any lag with a small streamMaxLength). One
    // MULTI makes that deterministic: three entries are added and the first is
    // trimmed before the (connected, never killed) reader is served; it then
    // reads the two survivors, a batch far from full.
    const events = b.storage.redisKeys.events;
    await raw.multi()
      .addCommand(['XADD', events, '*', 't', 'c', 's', '2', 'o', 'w', 'n', '2'])
      .addCommand(['XADD', events, '*', 't', 'c', 's', '3', 'o', 'w', 'n', '3'])
      .addCommand(['XADD', events, '*', 't', 'c', 's', '4', 'o', 'w', 'n', '4'])
      .addCommand(['SET', b.storage.redisKeys.sequence, '4'])
      .addCommand(['XTRIM', events, 'MAXLEN', '2'])
      .exec();
    await b.log.until(() => b.log.lines.includes('created:4'), 'b to see created:4');
    await expect(writer.createSession(5n)).resolves.toBe(true);
    await b.log.until(() => b.log.lines.includes('created:5'), 'b to see created:5');

    expect(b.log.lines).toEqual(['created:1', 'created:3', 'created:4', 'created:5']);
    // created:2 was never delivered, so b must have been told.
    expect(b.log.missed).toHaveLength(1);
  }, 30_000);

  it('lets exactly one of 200 concurrent creates of one id across two instances win, announced once on each', async () => {
    const prefix = freshPrefix();
    const a = instance(prefix, 'a');
    const b = instance(prefix, 'b');
    await Promise.all([a.storage.ping(), b.storage.ping()]);
    for (const authKeyId of [undefined, INT64_MIN]) {
      const id = -42n;
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? a : b).subject.createSession(id, authKeyId)));
      expect(results.filter((won) => won)).toHaveLength(1);
      // A later transition both must see: anything the race announced comes before it in the stream.
      await expect(a.subject.destroySession(id, authKeyId)).resolves.toBe(true);
    }
    const expected = ['created:-42', 'destroyed:-42', `created:-42@${INT64_MIN}`, `destroyed:-42@${INT64_MIN}`];
    for (const peer of [a, b]) {
      await peer.log.until(() => peer.log.events.length >= expected.length, `${peer.id} to see ${expected.length} events`);
      expectInOrder(peer.log.lines, expected, shards);
    }
  }, 30_000);

  it('rejects creates and destroys held in Redis when it dies, within commandTimeout', async () => {
    const commandTimeout = 500;
    const a = instance(freshPrefix(), 'a', { commandTimeout });
    await expect(a.subject.createSession(1n)).resolves.toBe(true);

    // CLIENT PAUSE WRITE holds every script (EVALSHA) in Redis, unexecuted; the
    // storage's one connection then waits behind it, so the calls are in flight in Redis.
    await raw.sendCommand(['CLIENT', 'PAUSE', '60000', 'WRITE']);
    const create = a.subject.createSession(2n);
    const destroy = a.subject.destroySession(1n);
    await untilClients(raw, (clients) => clients.some((client) => client.cmd === 'evalsha' && client.flags.includes('b')), 'a script held by the pause');
    expect(await stateOf(create)).toBe('pending');
    expect(await stateOf(destroy)).toBe('pending');

    const killed = performance.now();
    await server.kill();
    const outcomes = await Promise.allSettled([create, destroy]);
    expect(performance.now() - killed).toBeLessThan(commandTimeout + 1000);
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(SessionStorageUnavailableError);
    }
  }, 30_000);

  it('settles every transition of a burst within commandTimeout when Redis is killed mid-burst', async () => {
    const commandTimeout = 500;
    const prefix = freshPrefix();
    const a = instance(prefix, 'a', { commandTimeout });
    const b = instance(prefix, 'b', { commandTimeout });
    await Promise.all([a.storage.ping(), b.storage.ping()]);

    let resolved = 0;
    const settling = new Conditions();
    const start = (i: number): Promise<boolean> => {
      const peer = i % 2 === 0 ? a : b;
      const id = BigInt(i >> 1);
      const call = i % 4 < 2 ? peer.subject.createSession(id) : peer.subject.destroySession(id - 1n);
      const count = () => {
        resolved++;
        settling.wake();
      };
      call.then(count, count);
      return call;
    };
    const calls = Array.from({ length: 1000 }, (_, i) => start(i));
    await settling.until(() => resolved >= 50, '50 settled calls');
    // The second half of the burst is held in Redis by a pause, so that calls are
    // surely in flight when it dies: the first half alone can finish in the time a
    // kill takes. Calls of the first half may still wait for their own events.
    await raw.sendCommand(['CLIENT', 'PAUSE', '60000', 'WRITE']);
    for (let i = 1000; i < 2000; i++) calls.push(start(i));
    await untilClients(raw, (clients) => clients.some((client) => client.cmd === 'evalsha' && client.flags.includes('b')), 'a script held by the pause');
    const killed = performance.now();
    await server.kill();
    const outcomes = await Promise.allSettled(calls);
    const settledMs = performance.now() - killed;

    expect(settledMs).toBeLessThan(commandTimeout + 1000);
    const rejected = outcomes.filter((outcome) => outcome.status === 'rejected');
    expect(rejected.length).toBeGreaterThan(0);
    for (const outcome of rejected) expect(outcome.reason).toBeInstanceOf(SessionStorageUnavailableError);
    for (const outcome of outcomes) if (outcome.status === 'fulfilled') expect(typeof outcome.value).toBe('boolean');
  }, 30_000);
});
