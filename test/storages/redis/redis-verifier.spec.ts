/**
 * What leaves Redis, or changes there, without a write to show it is found
 * within verifyInterval + commandTimeout: a FLUSHALL, a sorted set deleted by
 * hand, the layout record gone or changed. Observers are told, replicas are
 * rebuilt, and a fleet is never split in silence.
 */
import { SessionSubject } from 'nestjs-mtproto-sessions';
import { RedisKeyLayoutError, RedisSessionStorage, type RedisSessionStorageOptions } from 'nestjs-mtproto-sessions/redis';
import { EventLog } from '../../support/event-log';
import { connectRaw, type RawClient } from '../../support/raw-redis';
import { RecordingLogger } from '../../support/recording-logger';
import { REDIS_CLIENT_KINDS, type RedisClientKind } from '../../support/redis-client-kinds';
import { describeRedis, startRedisServer, type RedisServer } from '../../support/redis-server';
import { pollUntil } from '../../support/wait-until';

const VERIFY_INTERVAL = 200;
const COMMAND_TIMEOUT = 500;
/** The documented bound, plus slack for timers on a loaded machine. */
const FOUND_WITHIN_MS = VERIFY_INTERVAL + COMMAND_TIMEOUT + 500;

describeRedis('RedisSessionStorage finds what changed in Redis without a write', () => {
  let server: RedisServer;
  let raw: RawClient;
  const open: (() => Promise<void>)[] = [];
  let prefixes = 0;

  beforeAll(async () => {
    server = await startRedisServer();
    raw = await connectRaw(server.url);
  });

  afterEach(async () => {
    await Promise.all(open.splice(0).map((close) => close()));
  });

  afterAll(async () => {
    await raw.close();
    await server.stop();
  });

  function instance(keyPrefix: string, instanceId: string, options: Partial<RedisSessionStorageOptions> = {}, kind: RedisClientKind = REDIS_CLIENT_KINDS[0]!) {
    const logger = new RecordingLogger();
    const { options: source, release } = kind.connect(server.url);
    const storage = new RedisSessionStorage({ ...source, keyPrefix, instanceId, logger, commandTimeout: COMMAND_TIMEOUT, verifyInterval: VERIFY_INTERVAL, ...options });
    const subject = new SessionSubject(storage, { logger });
    const log = new EventLog();
    subject.subscribe(log);
    open.push(() => subject.close().finally(release));
    return { storage, subject, log, logger };
  }

  async function twoWithSessions(kind?: RedisClientKind) {
    const prefix = `verify${++prefixes}`;
    const a = instance(prefix, 'a', {}, kind);
    const b = instance(prefix, 'b', {}, kind);
    await Promise.all([a.storage.ready(), b.storage.ready()]);
    for (const id of [1n, 2n, 3n]) await expect(a.subject.createSession(id)).resolves.toBe(true);
    await Promise.all([a, b].map((peer) => peer.log.untilCount(3)));
    await Promise.all([a.storage.localReadsReady(), b.storage.localReadsReady()]);
    for (const peer of [a, b]) await expect(peer.subject.hasSession(2n)).resolves.toBe(true);
    return { prefix, a, b };
  }

  it.each(REDIS_CLIENT_KINDS.map((kind) => [kind.name, kind] as const))('tells every instance of a FLUSHALL with nobody writing, once, and rebuilds the replicas (%s)', async (_name, kind) => {
    const { a, b } = await twoWithSessions(kind);
    await raw.flushAll();
    const flushed = performance.now();
    await Promise.all([a, b].map((peer) => peer.log.until(() => peer.log.missed.length > 0, 'the loss notice', FOUND_WITHIN_MS * 2)));
    expect(performance.now() - flushed).toBeLessThan(FOUND_WITHIN_MS);
    for (const peer of [a, b]) {
      expect(peer.log.missed.map((notice) => notice.reason)).toEqual(['lost']);
      await expect(peer.subject.hasSession(2n)).resolves.toBe(false);
    }
    // Created anew: announced once more as created, after the notice, which said the earlier one is gone.
    await expect(b.subject.createSession(2n)).resolves.toBe(true);
    await a.log.until(() => a.log.lines.filter((line) => line === 'created:2').length === 2, 'a to hear of session 2 created anew');
    expect(a.log.missed).toHaveLength(1);
  }, 20_000);

  it.each(REDIS_CLIENT_KINDS.map((kind) => [kind.name, kind] as const))('finds a sorted set deleted by hand: the replicas diverged, observers are told, lookups are right again (%s)', async (_name, kind) => {
    const { a, b } = await twoWithSessions(kind);
    await raw.del(a.storage.redisKeys.sessions);
    await Promise.all([a, b].map((peer) => peer.log.until(() => peer.log.missed.length > 0, 'the divergence notice', FOUND_WITHIN_MS * 2)));
    for (const peer of [a, b]) {
      expect(peer.log.missed.map((notice) => notice.reason)).toEqual(['diverged']);
      await pollUntil(async () => (await peer.subject.hasSession(2n)) === false, 'the replica rebuilt');
    }
  }, 20_000);

  it('records the layout again once it is gone, so an instance with another layout is still refused', async () => {
    const { prefix } = await twoWithSessions();
    await raw.flushAll();
    await pollUntil(async () => (await raw.hGet(`{${prefix}}:layout`, 'shards')) === '1', 'the layout recorded again', { timeoutMs: FOUND_WITHIN_MS * 2 });
    const other = instance(prefix, 'c', { shards: 4 });
    await expect(other.storage.ready()).rejects.toBeInstanceOf(RedisKeyLayoutError);
  }, 20_000);

  it('stops serving, loudly, when the recorded layout changes under it', async () => {
    const { prefix, a } = await twoWithSessions();
    await raw.hSet(`{${prefix}}:layout`, 'shards', '4');
    await pollUntil(() => a.logger.errors.some((line) => /stops serving calls/.test(line)), 'a loud error', { timeoutMs: FOUND_WITHIN_MS * 2 });
    await expect(a.subject.createSession(9n)).rejects.toBeInstanceOf(RedisKeyLayoutError);
    await expect(a.subject.hasSession(1n)).rejects.toBeInstanceOf(RedisKeyLayoutError);
  }, 20_000);
});
