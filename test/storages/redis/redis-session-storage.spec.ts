import { createClient } from 'redis';
import {
  InvalidSessionIdError,
  SessionLimitError,
  SessionStorageUnavailableError,
  SessionSubject,
} from 'nestjs-mtproto-sessions';
import { RedisSessionStorage } from 'nestjs-mtproto-sessions/redis';
import { INT64_MAX, INT64_MIN } from '../../../src/core/session-id';
import { EventLog } from '../../support/event-log';
import { RecordingLogger } from '../../support/recording-logger';
import { REDIS_CLIENT_KINDS } from '../../support/redis-client-kinds';
import { describeRedis, startRedisServer, type RedisServer } from '../../support/redis-server';

for (const kind of REDIS_CLIENT_KINDS) describeRedis(`RedisSessionStorage against a real redis-server (${kind.name})`, () => {
  let server: RedisServer;
  let prefixCounter = 0;
  const open: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    server = await startRedisServer();
  }, 30_000);

  afterAll(async () => {
    await server?.stop();
  });

  afterEach(async () => {
    await Promise.all(open.splice(0).map((closable) => closable.close()));
  });

  /** One application instance: a subject over its own storage, sharing `keyPrefix` with its peers. */
  function instance(keyPrefix: string, options: Partial<ConstructorParameters<typeof RedisSessionStorage>[0]> = {}) {
    const logger = new RecordingLogger();
    const { options: source, release } = kind.connect(server.url);
    const storage = new RedisSessionStorage({ ...source, keyPrefix, logger, ...options });
    const subject = new SessionSubject(storage, { logger });
    const log = new EventLog();
    subject.subscribe(log);
    open.push({ close: () => subject.close().finally(release) });
    return { storage, subject, log, logger };
  }

  function freshPrefix(): string {
    return `test-${process.pid}-${++prefixCounter}`;
  }

  it('keeps exact booleans across the full signed 64-bit range, scoped and unscoped', async () => {
    const { subject } = instance(freshPrefix());
    for (const id of [INT64_MIN, -1n, 0n, 1n, INT64_MAX]) {
      await expect(subject.createSession(id)).resolves.toBe(true);
      await expect(subject.createSession(id)).resolves.toBe(false);
      await expect(subject.hasSession(id)).resolves.toBe(true);
      await expect(subject.hasSession(id, INT64_MAX)).resolves.toBe(false);
      await expect(subject.createSession(id, INT64_MAX)).resolves.toBe(true);
      await expect(subject.destroySession(id)).resolves.toBe(true);
      await expect(subject.destroySession(id)).resolves.toBe(false);
      await expect(subject.hasSession(id, INT64_MAX)).resolves.toBe(true);
    }
  });

  it('announces each own transition once, with reason and origin, before the call resolves', async () => {
    const { subject, storage, log } = instance(freshPrefix(), { instanceId: 'instance-a' });
    await subject.createSession(5n, 7n);
    expect(log.lines).toEqual(['created:5@7']);
    await subject.destroySession(5n, 7n);
    expect(log.lines).toEqual(['created:5@7', 'destroyed:5@7']);
    expect(log.events.map((event) => [event.origin, event.reason])).toEqual([['instance-a', undefined], ['instance-a', 'destroyed']]);
    expect(storage.instanceId).toBe('instance-a');
  });

  it('delivers every transition to every instance, in order, whichever made it', async () => {
    const prefix = freshPrefix();
    const a = instance(prefix, { instanceId: 'a' });
    const b = instance(prefix, { instanceId: 'b' });
    // An instance hears the transitions made after it is ready (SessionsModule waits for this at bootstrap).
    await Promise.all([a.subject.ready(), b.subject.ready()]);
    await a.subject.createSession(1n);
    await b.subject.destroySession(1n);
    await b.subject.createSession(1n);
    await a.subject.destroySession(1n);
    const expected = ['created:1', 'destroyed:1', 'created:1', 'destroyed:1'];
    await a.log.untilCount(4);
    await b.log.untilCount(4);
    expect(a.log.lines).toEqual(expected);
    expect(b.log.lines).toEqual(expected);
    expect(a.log.events.map((event) => event.origin)).toEqual(['a', 'b', 'b', 'a']);
  });

  it('lets exactly one of many concurrent creates across instances win', async () => {
    const prefix = freshPrefix();
    const a = instance(prefix);
    const b = instance(prefix);
    await Promise.all([a.subject.ready(), b.subject.ready()]);
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? a : b).subject.createSession(42n)));
    expect(results.filter(Boolean)).toHaveLength(1);
    await a.log.untilCount(1);
    await b.log.untilCount(1);
    expect(a.log.lines).toEqual(['created:42']);
    expect(b.log.lines).toEqual(['created:42']);
  });

  it('keeps two key prefixes apart', async () => {
    const a = instance(freshPrefix());
    const b = instance(freshPrefix());
    await a.subject.createSession(3n);
    await expect(b.subject.hasSession(3n)).resolves.toBe(false);
    await expect(b.subject.createSession(3n)).resolves.toBe(true);
    expect(a.log.lines).toEqual(['created:3']);
  });

  it('rejects bad ids with InvalidSessionIdError and writes nothing', async () => {
    const { storage } = instance(freshPrefix());
    await expect(storage.createSession(1 as unknown as bigint)).rejects.toBeInstanceOf(InvalidSessionIdError);
    await expect(storage.createSession(2n ** 63n)).rejects.toBeInstanceOf(InvalidSessionIdError);
    await expect(storage.hasSession(1n, 'x' as unknown as bigint)).rejects.toBeInstanceOf(InvalidSessionIdError);
    await expect(storage.count()).resolves.toBe(0);
  });

  it('refuses sessions past maxSessions with SessionLimitError, changing nothing', async () => {
    const { subject, storage, log } = instance(freshPrefix(), { maxSessions: 2 });
    await subject.createSession(1n);
    await subject.createSession(2n, 9n);
    const refused = subject.createSession(3n);
    await expect(refused).rejects.toBeInstanceOf(SessionLimitError);
    await expect(refused).rejects.toMatchObject({ limit: 2 });
    await expect(storage.count()).resolves.toBe(2);
    await expect(subject.hasSession(3n)).resolves.toBe(false);
    await expect(subject.createSession(1n)).resolves.toBe(false);
    expect(log.lines).toEqual(['created:1', 'created:2@9']);
  });

  it('uses a client the application owns without closing it', async () => {
    const client = createClient({ url: server.url });
    await client.connect();
    try {
      const storage = new RedisSessionStorage({ client, keyPrefix: freshPrefix(), logger: new RecordingLogger() });
      const subject = new SessionSubject(storage);
      const log = new EventLog();
      subject.subscribe(log);
      await expect(subject.createSession(11n)).resolves.toBe(true);
      expect(log.lines).toEqual(['created:11']);
      await subject.close();
      await expect(client.ping()).resolves.toBe('PONG');
    } finally {
      await client.close();
    }
  });

  it('changes nothing when the event cannot be recorded (the stream key holds another type)', async () => {
    const storage = new RedisSessionStorage({ url: server.url, keyPrefix: freshPrefix(), logger: new RecordingLogger() });
    open.push(storage);
    const raw = createClient({ url: server.url });
    await raw.connect();
    try {
      // The sequence too is as it was: a hole in it would read as events lost.
      const sequence = async () => Number((await raw.get(storage.redisKeys.sequence)) ?? 0);
      await raw.set(storage.redisKeys.events, 'not a stream');
      await expect(storage.createSession(1n)).rejects.toBeInstanceOf(SessionStorageUnavailableError);
      await expect(storage.hasSession(1n)).resolves.toBe(false);
      await expect(raw.zCard(storage.redisKeys.sessions)).resolves.toBe(0);
      await expect(sequence()).resolves.toBe(0);
      await raw.del(storage.redisKeys.events);
      await expect(storage.createSession(1n)).resolves.toBe(true);
      await expect(sequence()).resolves.toBe(1);
      await raw.set(storage.redisKeys.events, 'not a stream');
      await expect(storage.destroySession(1n)).rejects.toBeInstanceOf(SessionStorageUnavailableError);
      await expect(storage.hasSession(1n)).resolves.toBe(true);
      await expect(sequence()).resolves.toBe(1);
    } finally {
      await raw.close();
    }
  });

  it('applies back-to-back calls on one session in the order they were made, also on a server that has not seen the scripts', async () => {
    const raw = createClient({ url: server.url });
    await raw.connect();
    try {
      for (let round = 0; round < 3; round++) {
        await raw.sendCommand(['SCRIPT', 'FLUSH']);
        // A fresh storage, whose destroy script alone is known to the server: the create must still run first.
        const { subject, storage } = instance(freshPrefix());
        await subject.destroySession(999n);
        await expect(Promise.all([subject.createSession(1n), subject.destroySession(1n)])).resolves.toEqual([true, true]);
        await expect(storage.count()).resolves.toBe(0);
      }
    } finally {
      await raw.close();
    }
  });

  it('answers ping() while Redis is up', async () => {
    const { storage } = instance(freshPrefix());
    await expect(storage.ping()).resolves.toBeUndefined();
  });

  it('fails calls to an unreachable Redis within commandTimeout with a typed error', async () => {
    const logger = new RecordingLogger();
    const storage = new RedisSessionStorage({ url: 'redis://127.0.0.1:1', commandTimeout: 300, logger });
    open.push(storage);
    const started = Date.now();
    const outcomes = await Promise.allSettled([storage.createSession(1n), storage.hasSession(1n), storage.ping()]);
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(SessionStorageUnavailableError);
    }
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
