/**
 * The origins hash stays bounded: instance ids silent for ORIGIN_TTL_MS are
 * dropped by a running instance's prune; entries they wrote are still
 * delivered (with no origin, warned of once); an instance whose registration
 * was dropped registers anew at its next write and its calls and events are
 * as before.
 */
import { randomUUID } from 'node:crypto';
import { SessionSubject } from 'nestjs-mtproto-sessions';
import { RedisSessionStorage, type RedisSessionStorageOptions } from 'nestjs-mtproto-sessions/redis';
import { ORIGIN_TTL_MS } from '../../../src/storages/redis/redis-origins';
import { EventLog } from '../../support/event-log';
import { connectRaw, type RawClient } from '../../support/raw-redis';
import { RecordingLogger } from '../../support/recording-logger';
import { describeRedis, startRedisServer, type RedisServer } from '../../support/redis-server';
import { startTcpProxy, type TcpProxy } from '../../support/tcp-proxy';
import { pollUntil } from '../../support/wait-until';

const COMMAND_TIMEOUT = 1000;
/** Long enough that an instance's own timer never tends the origins during a test. */
const QUIET = 60_000;
const DROPPED = /delivered without an origin/;

/** The verifier's internal prune, reached as other tests reach internals: a prune of every group's origins now. */
function pruneNow(storage: RedisSessionStorage): Promise<void> {
  return (storage as unknown as { verifier: { pruneOrigins(): Promise<void> } }).verifier.pruneOrigins();
}

describeRedis('the origins hash is bounded (real redis-server)', () => {
  let server: RedisServer;
  let raw: RawClient;
  let proxy: TcpProxy;
  const open: (() => Promise<void>)[] = [];
  let prefixes = 0;

  beforeAll(async () => {
    server = await startRedisServer();
    raw = await connectRaw(server.url);
    proxy = await startTcpProxy(server.port);
  }, 30_000);

  afterEach(async () => {
    proxy.heal();
    await Promise.all(open.splice(0).map((close) => close()));
  });

  afterAll(async () => {
    await proxy?.close();
    await raw?.close();
    await server?.stop();
  });

  function options(keyPrefix: string, instanceId: string, extra: Partial<RedisSessionStorageOptions> = {}) {
    return { url: server.url, keyPrefix, instanceId, commandTimeout: COMMAND_TIMEOUT, verifyInterval: QUIET, ...extra };
  }

  /** A storage with a subject and an event log. */
  function instance(keyPrefix: string, instanceId: string, extra: Partial<RedisSessionStorageOptions> = {}) {
    const logger = new RecordingLogger();
    const storage = new RedisSessionStorage({ ...options(keyPrefix, instanceId, extra), logger });
    const subject = new SessionSubject(storage, { logger });
    const log = new EventLog();
    subject.subscribe(log);
    open.push(() => subject.close());
    return { storage, subject, log, logger };
  }

  /** A storage that writes once and is gone: no subject, closed after its create. */
  async function writeOnce(keyPrefix: string, instanceId: string, ...sessions: bigint[]): Promise<void> {
    const storage = new RedisSessionStorage({ ...options(keyPrefix, instanceId), logger: new RecordingLogger() });
    try {
      for (const id of sessions) await expect(storage.createSession(id)).resolves.toBe(true);
    } finally {
      await storage.close();
    }
  }

  /** Redis's clock, ms, as the scripts read it. */
  async function redisNow(): Promise<number> {
    const [seconds, micros] = (await raw.sendCommand(['TIME'])) as [string, string];
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  }

  /** Makes `ids` look silent for longer than the TTL, on Redis's clock. */
  async function age(origins: string, ids: readonly string[]): Promise<void> {
    const old = String((await redisNow()) - ORIGIN_TTL_MS - 1000);
    await raw.hSet(origins, Object.fromEntries(ids.map((id) => [`t:${id}`, old])));
  }

  it('drops the instance ids silent past the TTL, at a running instance\'s own prune, and keeps the live ones', async () => {
    const prefix = `origins${++prefixes}`;
    const gone = Array.from({ length: 50 }, () => randomUUID());
    for (const [n, id] of gone.entries()) await writeOnce(prefix, id, BigInt(n));
    const origins = `{${prefix}}:origins`;
    // Written by a version before heartbeats: registered, no t: field. Kept, with a full TTL from the prune.
    const [legacy, ...silent] = gone;
    await age(origins, silent);
    expect(Object.keys(await raw.hGetAll(origins))).toHaveLength(1 + 2 * 50 + 49);

    // A live instance with the verifier's own timer: its first round beats and, no prune having run yet, prunes.
    const live = instance(prefix, 'live', { verifyInterval: 100 });
    await expect(live.subject.createSession(100n)).resolves.toBe(true);
    await pollUntil(async () => Object.keys(await raw.hGetAll(origins)).length <= 9, 'the origins hash to shrink to the live instances');

    const hash = await raw.hGetAll(origins);
    const codeOf = (id: string) => hash[`i:${id}`]!;
    // The live instance's heartbeat is there unless its first round ran before its first write registered it.
    expect(Object.keys(hash).filter((field) => field !== 't:live').sort()).toEqual(
      ['n', 'p', `i:${legacy}`, `c:${codeOf(legacy!)}`, `t:${legacy}`, 'i:live', `c:${codeOf('live')}`].sort(),
    );
    expect(hash[`c:${codeOf('live')}`]).toBe('live');
    // The registered one without a heartbeat got one as of the prune, not dropped.
    expect(Number(hash[`t:${legacy}`])).toBeGreaterThan((await redisNow()) - 60_000);
    // Codes are never given again.
    expect(Number(hash.n)).toBe(51);
  }, 60_000);

  it('delivers an entry whose origin was dropped before it was read, without an origin, warning once', async () => {
    const prefix = `origins${++prefixes}`;
    const origins = `{${prefix}}:origins`;
    // The reader connects through the proxy, so it can be cut off while the entries are written and their origin dropped.
    const reader = instance(prefix, 'reader', { url: proxy.url });
    await expect(reader.subject.createSession(1n)).resolves.toBe(true);
    await reader.log.untilCount(1);
    const pruner = instance(prefix, 'pruner');
    await pruner.storage.ready();

    proxy.partition();
    const writer = randomUUID();
    await writeOnce(prefix, writer, 2n, 3n);
    const code = (await raw.hGet(origins, `i:${writer}`))!;
    await age(origins, [writer]);
    await pruneNow(pruner.storage);
    await expect(raw.hmGet(origins, [`i:${writer}`, `c:${code}`, `t:${writer}`])).resolves.toEqual([null, null, null]);
    proxy.heal();

    await reader.log.untilCount(3);
    expect(reader.log.lines).toEqual(['created:1', 'created:2', 'created:3']);
    expect(reader.log.events.map((event) => event.origin)).toEqual(['reader', undefined, undefined]);
    expect(reader.log.missed).toEqual([]);
    const dropped = reader.logger.warnings.filter((line) => DROPPED.test(line));
    expect(dropped).toHaveLength(1);
    expect(dropped[0]).toContain(`origin code "${code}"`);
    expect(dropped[0]).toContain(`${ORIGIN_TTL_MS / 60_000} minutes`);
    expect(reader.logger.warnings.filter((line) => /malformed/i.test(line))).toEqual([]);
  }, 30_000);

  it('registers an instance whose origin was dropped anew at its next write: its call resolves, its events carry its id', async () => {
    const prefix = `origins${++prefixes}`;
    const origins = `{${prefix}}:origins`;
    const id = randomUUID();
    const a = instance(prefix, id);
    const other = instance(prefix, 'other');
    await expect(a.subject.createSession(1n)).resolves.toBe(true);
    const first = Number(await raw.hGet(origins, `i:${id}`));
    await other.log.untilCount(1);

    await age(origins, [id]);
    await pruneNow(other.storage);
    await expect(raw.hGet(origins, `i:${id}`)).resolves.toBeNull();

    // Its own entry, under a new code, is recognised: the call resolves (it would time out waiting otherwise).
    await expect(a.subject.createSession(2n)).resolves.toBe(true);
    const second = Number(await raw.hGet(origins, `i:${id}`));
    expect(second).toBeGreaterThan(first);
    await expect(raw.hGet(origins, `c:${second}`)).resolves.toBe(id);
    await other.log.untilCount(2);
    for (const peer of [a, other]) {
      expect(peer.log.lines).toEqual(['created:1', 'created:2']);
      expect(peer.log.events.map((event) => event.origin)).toEqual([id, id]);
      expect(peer.logger.warnings.filter((line) => DROPPED.test(line))).toEqual([]);
    }
  }, 30_000);
});
