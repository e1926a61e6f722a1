/**
 * A call's own transition is announced from its script's reply when every
 * entry before it has been announced here: the call waits for no read of its
 * own entry. The reader passes over those entries later (each is announced
 * once), and an entry of another instance's in between makes the call wait
 * for the reader, so stream order holds. The reader is cut off here by a
 * proxy that drops its bytes, its connection kept open: without announcing
 * from replies, the calls below would wait for it and time out.
 */
import { SessionStorageTimeoutError, SessionSubject } from 'nestjs-mtproto-sessions';
import { RedisSessionStorage, type RedisSessionStorageOptions } from 'nestjs-mtproto-sessions/redis';
import { ENTRY, ENTRY_TYPE } from '../../../src/storages/redis/redis-stream-entry';
import { EventLog } from '../../support/event-log';
import { connectRaw } from '../../support/raw-redis';
import { RecordingLogger } from '../../support/recording-logger';
import { describeRedis, startRedisServer, type RedisServer } from '../../support/redis-server';
import { startTcpProxy, type TcpProxy } from '../../support/tcp-proxy';

describeRedis('RedisSessionStorage announces its own transitions from their replies', () => {
  let server: RedisServer;
  let proxy: TcpProxy;
  const open: (() => Promise<void>)[] = [];
  let prefixes = 0;

  beforeAll(async () => {
    server = await startRedisServer();
    proxy = await startTcpProxy(server.port);
  });

  afterEach(async () => {
    proxy.heal();
    await Promise.all(open.splice(0).map((close) => close()));
  });

  afterAll(async () => {
    await proxy.close();
    await server.stop();
  });

  function instance(url: string, keyPrefix: string, instanceId: string, options: Partial<RedisSessionStorageOptions> = {}) {
    const logger = new RecordingLogger();
    const storage = new RedisSessionStorage({ url, keyPrefix, instanceId, logger, ...options });
    const subject = new SessionSubject(storage, { logger });
    const log = new EventLog();
    subject.subscribe(log);
    open.push(() => subject.close());
    return { storage, subject, log, logger };
  }

  it('resolves its own calls with its reader cut off, announcing each once, in order', async () => {
    const prefix = `own${++prefixes}`;
    // The reader's watchdog gives up on its cut connection after blockMs + commandTimeout: long after the calls.
    const a = instance(proxy.url, prefix, 'a', { commandTimeout: 2000 });
    await a.subject.ready();
    // A first call, so the reader is at the stream's end on a live connection.
    await expect(a.subject.createSession(1n)).resolves.toBe(true);

    expect(proxy.partitionWhere('XREAD')).toBe(1);
    await expect(a.subject.createSession(2n)).resolves.toBe(true);
    await expect(a.subject.destroySession(1n)).resolves.toBe(true);
    await expect(a.subject.destroySession(2n)).resolves.toBe(true);
    expect(a.log.lines).toEqual(['created:1', 'created:2', 'destroyed:1', 'destroyed:2']);

    // Healed, the reader reconnects and reads those entries back: it passes over them.
    proxy.heal();
    const b = instance(server.url, prefix, 'b');
    await b.subject.ready();
    await expect(b.subject.createSession(3n)).resolves.toBe(true);
    await a.log.until(() => a.log.lines.includes('created:3'), 'a to hear of b\'s session 3');
    expect(a.log.lines).toEqual(['created:1', 'created:2', 'destroyed:1', 'destroyed:2', 'created:3']);
    expect(a.log.missed).toEqual([]);
    expect(a.logger.warnings.filter((warning) => !/event reader (lost its Redis connection|reconnected)/.test(warning))).toEqual([]);
  }, 20_000);

  it('leaves to its reader an entry between a batch and the reader\'s position that its sequence numbers do not show', async () => {
    const prefix = `own${++prefixes}`;
    const a = instance(proxy.url, prefix, 'a', { commandTimeout: 2000 });
    await a.subject.ready();
    // The batch script loaded (the first calls issued together go one by one while it loads), the reader at the end.
    await Promise.all([a.subject.createSession(1n), a.subject.destroySession(1n)]);
    await Promise.all([a.subject.createSession(1n), a.subject.destroySession(1n)]);

    expect(proxy.partitionWhere('XREAD')).toBe(1);
    const raw = await connectRaw(server.url);
    open.push(async () => raw.destroy());
    // Written by hand, with no sequence number: only the batch's reply (the entry before its first) shows it is there.
    const foreign = await raw.xAdd(a.storage.redisKeys.events, '*', { [ENTRY.type]: ENTRY_TYPE.created, [ENTRY.sessionId]: '77' });
    await expect(Promise.all([a.subject.createSession(2n), a.subject.createSession(3n)])).resolves.toEqual([true, true]);

    // Healed, the reader reconnects and reads on from where it was: before that entry, which it reads (and skips as malformed).
    proxy.heal();
    const b = instance(server.url, prefix, 'b');
    await b.subject.ready();
    await expect(b.subject.createSession(4n)).resolves.toBe(true);
    await a.log.until(() => a.log.lines.includes('created:4'), 'a to hear of b\'s session 4');
    expect(a.logger.warnings.filter((warning) => warning.includes(`malformed session event ${foreign}`))).toHaveLength(1);
    expect(a.log.lines.slice(-3)).toEqual(['created:2', 'created:3', 'created:4']);
  }, 20_000);

  it('waits for its reader when another instance\'s entry comes first, keeping stream order', async () => {
    const prefix = `own${++prefixes}`;
    const a = instance(proxy.url, prefix, 'a', { commandTimeout: 500 });
    const b = instance(server.url, prefix, 'b');
    await Promise.all([a.subject.ready(), b.subject.ready()]);
    await expect(a.subject.createSession(1n)).resolves.toBe(true);
    // a's reader has read b's first entry, and knows b's origin: cut off now, it waits in its blocking read.
    await expect(b.subject.createSession(0n)).resolves.toBe(true);
    await a.log.until(() => a.log.lines.includes('created:0'), 'a to hear of b\'s session 0');

    expect(proxy.partitionWhere('XREAD')).toBe(1);
    await expect(b.subject.createSession(2n)).resolves.toBe(true);
    // b's entry comes before a's own, and a's reader has not read it: a's call waits for the reader, past its bound.
    await expect(a.subject.createSession(3n)).rejects.toBeInstanceOf(SessionStorageTimeoutError);
    expect(a.log.lines).toEqual(['created:1', 'created:0']);

    proxy.heal();
    await a.log.until(() => a.log.lines.includes('created:3'), 'a to hear of its session 3 once healed');
    expect(a.log.lines).toEqual(['created:1', 'created:0', 'created:2', 'created:3']);
  }, 20_000);
});
