/**
 * Reliability of RedisSessionStorage against real redis-server processes:
 * hung, slow and re-entrant observers, misconfiguration, a Redis that never
 * answered, and closing at awkward moments.
 */
import { createClient } from 'redis';
import { SessionSubject, type SessionEvent, type SessionObserver } from 'nestjs-mtproto-sessions';
import { RedisSessionStorage, type RedisSessionStorageOptions } from 'nestjs-mtproto-sessions/redis';
import { ManualClock } from 'nestjs-mtproto-sessions/testing';
import { RecordingLogger } from '../../support/recording-logger';
import { EventLog, eventLine } from '../../support/event-log';
import { clientList, connectRaw, untilClients, type RawClient } from '../../support/raw-redis';
import { REDIS_CLIENT_KINDS } from '../../support/redis-client-kinds';
import { pollUntil, untilResolves, within } from '../../support/wait-until';
import { describeRedis, freePort, startRedisServer, type RedisServer } from '../../support/redis-server';


/** The pace of a scenario (a slow observer, a close amid sweeps); never a wait for a state or for nothing to happen. */
function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describeRedis('RedisSessionStorage reliability (real redis-server)', () => {
  let server: RedisServer;
  let prefixes = 0;
  const opened: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((closable) => closable.close()));
  });
  afterAll(async () => {
    await server.stop();
  });

  /** An instance: a storage under a subject, as SessionsModule builds it, ready. */
  async function instance(keyPrefix: string, options: Partial<RedisSessionStorageOptions> & { observerTimeout?: number } = {}) {
    const { observerTimeout, ...storageOptions } = options;
    const logger = new RecordingLogger();
    const storage = new RedisSessionStorage({ url: server.url, keyPrefix, logger, ...storageOptions });
    const subject = new SessionSubject(storage, { logger, observerTimeout });
    // The storage, not the subject: closing the subject would wait for observers a test leaves hanging on purpose.
    opened.push(storage);
    await subject.ready();
    return { storage, subject, logger };
  }

  function freshPrefix(): string {
    return `reliability-${process.pid}-${++prefixes}`;
  }

  describe('observers', () => {
    it("a hung observer on an instance holds up none of its other observers, for that session or another", async () => {
      const prefix = freshPrefix();
      const a = await instance(prefix);
      // A bound so long that waiting on the hung observer would time the test out.
      const b = await instance(prefix, { observerTimeout: 600_000 });
      const hung: SessionObserver = { update: (event) => (event.type === 'created' ? new Promise(() => undefined) : undefined) };
      const healthy = new EventLog();
      b.subject.subscribe(hung);
      b.subject.subscribe(healthy);

      expect(await a.subject.createSession(1n)).toBe(true);
      expect(await a.subject.destroySession(1n)).toBe(true);
      expect(await a.subject.createSession(2n)).toBe(true);
      await healthy.untilCount(3);
      expect(healthy.lines).toEqual(['created:1', 'destroyed:1', 'created:2']);
    });

    it('a call on the instance of a hung observer settles after observerTimeout, logging the observer by name', async () => {
      const prefix = freshPrefix();
      const a = await instance(prefix, { observerTimeout: 100, commandTimeout: 60_000 });
      a.subject.subscribe(Object.assign({ update: () => new Promise<void>(() => undefined) }, { toString: () => 'HungObserver' }));
      expect(await a.subject.createSession(5n)).toBe(true);
      expect(a.logger.errors).toEqual([expect.stringMatching(/HungObserver did not settle 'created' of session 5 within 100 ms/)]);
      await a.subject.close();
    });

    it('an observer slower than commandTimeout: the call still resolves true, the change being made', async () => {
      const prefix = freshPrefix();
      // A bound a loaded machine meets (a call that reaches Redis past it is refused: fencing), and an observer slower still.
      const a = await instance(prefix, { commandTimeout: 1000, observerTimeout: 5000 });
      const log = new EventLog();
      a.subject.subscribe({ update: () => new Promise<void>((resolve) => setTimeout(resolve, 1500)) });
      a.subject.subscribe(log);
      expect(await a.subject.createSession(6n)).toBe(true);
      expect(await a.subject.destroySession(6n)).toBe(true);
      expect(log.lines).toEqual(['created:6', 'destroyed:6']);
    });

    it('an expiry observer slower than commandTimeout: the sweep still reports what it expired', async () => {
      const clock = new ManualClock();
      const { storage, subject } = await instance(freshPrefix(), { commandTimeout: 1000, idleTimeout: 1000, sweepInterval: 3_600_000, clock: clock.now });
      let settled = false;
      subject.subscribe({ update: (event) => (event.reason === 'expired' ? pause(2500).then(() => { settled = true; }) : undefined) });
      await subject.createSession(1n);
      clock.advance(2000);
      await expect(storage.expireIdleSessions()).resolves.toBe(1);
      // It resolved once the observer had settled, past commandTimeout, as a call does.
      expect(settled).toBe(true);
    });

    it("re-entrant: an observer destroys, from its 'created' handler, the session it was told about, and awaits it; every observer of every instance hears created, then destroyed", async () => {
      const prefix = freshPrefix();
      // Bounds so long that a call waiting on another that waits on it would time the test out.
      const a = await instance(prefix, { commandTimeout: 600_000, observerTimeout: 600_000 });
      const b = await instance(prefix);
      const before = new EventLog();
      const after = new EventLog();
      const elsewhere = new EventLog();
      const destroyed: boolean[] = [];
      a.subject.subscribe(before);
      a.subject.subscribe({
        update: async (event: SessionEvent) => {
          if (event.type === 'created' && event.sessionId === 7n) destroyed.push(await a.subject.destroySession(event.sessionId));
        },
      });
      a.subject.subscribe(after);
      b.subject.subscribe(elsewhere);

      expect(await a.subject.createSession(7n)).toBe(true);
      expect(destroyed).toEqual([true]);
      await elsewhere.untilCount(2);
      for (const log of [before, after, elsewhere]) expect(log.lines).toEqual(['created:7', 'destroyed:7']);
      expect(await a.subject.hasSession(7n)).toBe(false);
    });

    it('re-entrant: an observer creates another session from inside update(); both are announced in order everywhere', async () => {
      const prefix = freshPrefix();
      const a = await instance(prefix, { commandTimeout: 600_000, observerTimeout: 600_000 });
      const log = new EventLog();
      a.subject.subscribe({
        update: async (event: SessionEvent) => {
          if (event.type === 'created' && event.sessionId === 8n) await a.subject.createSession(9n);
        },
      });
      a.subject.subscribe(log);
      expect(await a.subject.createSession(8n)).toBe(true);
      expect(log.events.map(eventLine)).toEqual(['created:8', 'created:9']);
    });
  });

  describe('misconfiguration is refused at once, naming the option', () => {
    it.each([
      ['an empty url (an unset REDIS_URL)', { url: '' }, /url must be a redis:\/\/ or rediss:\/\/ URL .*got an empty string/],
      ['a url without a scheme', { url: 'localhost:6379' }, /url must be a redis:\/\/ or rediss:\/\/ URL/],
      ['a url of another scheme', { url: 'http://127.0.0.1:6379' }, /got the scheme "http:"/],
      ['a url without a host (node-redis would take localhost:6379)', { url: 'redis://' }, /got "redis:\/\/", which names no host/],
      ['a commandTimeout past what a timer keeps', { url: 'redis://127.0.0.1:1', commandTimeout: 2 ** 31 }, /commandTimeout \(ms\) must be a positive integer of at most 86400000; got 2147483648/],
      ['a url that is not a string', { url: 6379 }, /url must be .*; got number/],
      ['a logger of the wrong type', { url: 'redis://127.0.0.1:1', logger: 'console' }, /RedisSessionStorage logger must have error\(message\) and warn\(message\) methods/],
      ['a logger without warn()', { url: 'redis://127.0.0.1:1', logger: { error: () => undefined } }, /RedisSessionStorage logger must have/],
      ['a misspelt option', { url: 'redis://127.0.0.1:1', comandTimeout: 500 }, /^RedisSessionStorage has unknown option comandTimeout; expected url, client, keyPrefix, instanceId, commandTimeout, .* or clock$/],
      ['a keyPrefix shaped as another prefix\'s key-group tag', { url: 'redis://127.0.0.1:1', keyPrefix: 'app:g0:53' }, /keyPrefix must not end in ":g<number>:<number>".*"app" with shards > 1 uses \{app:g0:53\}:sessions\); got "app:g0:53"/],
      ['localReads as a string', { url: 'redis://127.0.0.1:1', localReads: 'false' }, /localReads must be a boolean; got the string "false"/],
    ])('%s', (_, options, message) => {
      expect(() => new RedisSessionStorage(options as unknown as RedisSessionStorageOptions)).toThrow(
        expect.objectContaining({ name: 'TypeError', message: expect.stringMatching(message) }),
      );
    });

    it('a node-redis client that was never connected is refused, saying to connect it', () => {
      const client = createClient({ url: server.url });
      expect(() => new RedisSessionStorage({ client })).toThrow(
        expect.objectContaining({ name: 'TypeError', message: expect.stringMatching(/client: this node-redis client is not connected; call client.connect\(\) first/) }),
      );
    });

    it('a node-redis client closed already is refused too', async () => {
      const client = createClient({ url: server.url });
      await client.connect();
      await client.close();
      expect(() => new RedisSessionStorage({ client })).toThrow(expect.objectContaining({ name: 'TypeError', message: expect.stringMatching(/not connected/) }));
    });

    it('a client that is still connecting is accepted, and the storage is ready once it is', async () => {
      const client = createClient({ url: server.url });
      const connecting = client.connect();
      const storage = new RedisSessionStorage({ client, keyPrefix: freshPrefix() });
      await storage.ready();
      await connecting;
      expect(await storage.createSession(1n)).toBe(true);
      await storage.close();
      await client.close();
    });
  });

  describe('a Redis that was never reachable', () => {
    // commandTimeout is far above the test's own bound: a call that waited for its deadline would fail the test.
    it('fails calls with the connection error as cause, at the failed attempt rather than at commandTimeout', async () => {
      const logger = new RecordingLogger();
      const storage = new RedisSessionStorage({ url: `redis://127.0.0.1:${await freePort()}`, commandTimeout: 60_000, logger });
      opened.push(storage);
      for (const call of [() => storage.hasSession(1n), () => storage.createSession(2n)]) {
        const error: unknown = await call().then(() => undefined, (failure: unknown) => failure);
        expect(error).toMatchObject({ name: 'SessionStorageUnavailableError', cause: { code: 'ECONNREFUSED' } });
        expect((error as Error).message).toMatch(/could not connect: .*ECONNREFUSED/);
      }
      expect(logger.warnings.join('\n')).toMatch(/could not connect/);
      expect(logger.warnings.join('\n')).not.toMatch(/lost its connection/);
    }, 10_000);
  });

  describe('a Redis that comes up after the storage', () => {
    it.each(REDIS_CLIENT_KINDS.map((kind) => [kind.name, kind] as const))('works once it is up, after calls failed while it was not: %s', async (_, kind) => {
      const port = await freePort();
      const { options, release } = kind.connect(`redis://127.0.0.1:${port}`);
      const logger = new RecordingLogger();
      const storage = new RedisSessionStorage({ ...options, keyPrefix: freshPrefix(), commandTimeout: 1000, logger });
      const subject = new SessionSubject(storage, { logger });
      let late: RedisServer | undefined;
      try {
        await expect(subject.createSession(1n)).rejects.toMatchObject({ name: expect.stringMatching(/^SessionStorage(Unavailable|Timeout)Error$/) });
        late = await startRedisServer({ port });
        // Nothing announces that the storage reconnected: retried, bounded.
        await untilResolves(() => subject.createSession(2n), 'createSession to succeed once Redis is up', { intervalMs: 50, timeoutMs: 10_000 });
        await expect(subject.hasSession(2n)).resolves.toBe(true);
        await expect(storage.ready()).resolves.toBeUndefined();
      } finally {
        await storage.close();
        await release();
        await late?.stop();
      }
    }, 20_000);
  });

  describe('closing', () => {
    let raw: RawClient;
    beforeAll(async () => {
      raw = await connectRaw(server.url);
    });
    afterAll(async () => {
      await raw.close();
    });

    /** The highest client id the server has given: a connection opened later gets a higher one. */
    async function lastClientId(): Promise<number> {
      return Math.max(...(await clientList(raw)).map((client) => Number(client.id)));
    }

    /**
     * Waits until the server has seen every connection opened after `lastId` go. A storage's close
     * settles each of its commands (a reply, or a rejection as its connection is cut) before the server
     * sees that connection go, so by then anything the close made the storage log has been logged.
     */
    function untilClosedAtServer(lastId: number): Promise<void> {
      return untilClients(raw, (clients) => clients.every((client) => Number(client.id) <= lastId), "the storage's connections to close at the server");
    }

    it('closing right after it is ready, while its replica seeds and its reader reads, logs nothing', async () => {
      for (let round = 0; round < 5; round++) {
        const lastId = await lastClientId();
        const logger = new RecordingLogger();
        const storage = new RedisSessionStorage({ url: server.url, keyPrefix: freshPrefix(), logger });
        const subject = new SessionSubject(storage, { logger });
        await subject.ready();
        // A lookup starts the replica's seed; closing at once cuts it short.
        const lookup = subject.hasSession(1n).catch(() => undefined);
        await subject.close();
        await lookup;
        await untilClosedAtServer(lastId);
        expect([...logger.warnings, ...logger.errors]).toEqual([]);
      }
    });

    describe.each(REDIS_CLIENT_KINDS.map((kind) => [kind.name, kind] as const))('on a stalled Redis (kill -STOP), %s', (_, kind) => {
      // A graceful close waits for the replies of the commands in flight, which a stalled Redis never sends.
      const commandTimeout = 500;
      let stalled: RedisServer;
      let release: () => Promise<void>;
      let subject: SessionSubject;
      let storage: RedisSessionStorage;

      beforeEach(async () => {
        stalled = await startRedisServer();
        const connected = kind.connect(stalled.url);
        release = connected.release;
        const logger = new RecordingLogger();
        storage = new RedisSessionStorage({ ...connected.options, keyPrefix: freshPrefix(), commandTimeout, logger });
        subject = new SessionSubject(storage, { logger });
        await subject.ready();
        await subject.createSession(1n);
        // The create resolves from its reply; the reader's first read (which looks up this instance's origin) is done once the
        // replica answers locally. Stalled amid it, the reader would reconnect during the test and close() would wait for that.
        await pollUntil(() => storage.healthDetails().localReadsWithinLease === true, 'the reader\'s first read');
        stalled.pause();
      });
      afterEach(async () => {
        stalled.resume();
        await release();
        await stalled.stop();
      });

      it('storage.close() after a call timed out settles within commandTimeout', async () => {
        await expect(subject.createSession(2n)).rejects.toMatchObject({ name: 'SessionStorageTimeoutError' });
        // Bounded here, so that a close that hangs fails the test rather than the run.
        await within(storage.close(), 'storage.close() on a stalled Redis', commandTimeout + 250);
      });

      it('subject.close() with a call in flight settles once that call has timed out, not a commandTimeout later', async () => {
        const inFlight = subject.createSession(2n).catch((error: unknown) => error);
        // The call's own bound (commandTimeout, a quarter more at most with the coarse timer), then no wait for Redis again.
        await within(subject.close(), 'subject.close() on a stalled Redis', commandTimeout * 1.25 + 250);
        await expect(inFlight).resolves.toMatchObject({ name: 'SessionStorageTimeoutError' });
      });
    });

    it('a clean close() with idleTimeout does not log a failed sweep', async () => {
      for (let round = 0; round < 10; round++) {
        const lastId = await lastClientId();
        const logger = new RecordingLogger();
        const storage = new RedisSessionStorage({ url: server.url, keyPrefix: freshPrefix(), logger, idleTimeout: 1000, sweepInterval: 1 });
        const subject = new SessionSubject(storage, { logger });
        await subject.ready();
        await subject.createSession(1n);
        // The sweeper ticks every millisecond: closing now lands amid sweeps in flight.
        await pause(round);
        await subject.close();
        await untilClosedAtServer(lastId);
        expect(logger.warnings.filter((line) => /Sweeping expired sessions failed/.test(line))).toEqual([]);
      }
    });
  });
});

