/**
 * Bounded staleness: an instance answers a lookup from its replica only
 * within maxStaleness after its reader last heard from Redis. Its reader cut
 * off alone (the command connection working), a session another instance
 * destroyed stops being answered true within that bound; an own destroy that
 * failed never leaves the replica answering the old state.
 */
import { SessionStorageUnavailableError, SessionSubject } from 'nestjs-mtproto-sessions';
import { RedisSessionStorage, type RedisSessionStorageOptions } from 'nestjs-mtproto-sessions/redis';
import { EventLog } from '../../support/event-log';
import { RecordingLogger } from '../../support/recording-logger';
import { describeRedis, startRedisServer, type RedisServer } from '../../support/redis-server';
import { startTcpProxy, type TcpProxy } from '../../support/tcp-proxy';
import { pollUntil } from '../../support/wait-until';

const MAX_STALENESS = 1000;
/** Timer and scheduling slack on a loaded machine, on top of the bound. */
const SLACK_MS = 400;

describeRedis('RedisSessionStorage replicas answer within maxStaleness', () => {
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
    server.resume();
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
    return { storage, subject, log };
  }

  it('stops answering from the replica within maxStaleness once only its reader is cut off', async () => {
    const prefix = `stale${++prefixes}`;
    const a = instance(proxy.url, prefix, 'a', { maxStaleness: MAX_STALENESS });
    const b = instance(server.url, prefix, 'b');
    await Promise.all([a.storage.ready(), b.storage.ready(), a.storage.localReadsReady()]);
    await expect(b.subject.createSession(1n)).resolves.toBe(true);
    await a.log.until(() => a.log.lines.includes('created:1'), 'a to hear of session 1');
    await pollUntil(() => a.storage.healthDetails().localReadsWithinLease === true, 'a\'s replica within its lease');

    expect(proxy.partitionWhere('XREAD')).toBe(1);
    await expect(b.subject.destroySession(1n)).resolves.toBe(true);
    const destroyed = performance.now();
    // Its command connection still works: once the lease lapsed, the lookup asks Redis and is exact.
    await pollUntil(async () => (await a.subject.hasSession(1n)) === false, 'a to answer false', { timeoutMs: MAX_STALENESS * 3 });
    expect(performance.now() - destroyed).toBeLessThan(MAX_STALENESS + SLACK_MS);
    expect(a.log.lines).not.toContain('destroyed:1');
    expect(a.storage.healthDetails().localReadsWithinLease).toBe(false);

    proxy.heal();
    await a.log.until(() => a.log.lines.includes('destroyed:1'), 'a to hear of the destroy once healed');
    await pollUntil(() => a.storage.healthDetails().localReadsWithinLease === true, 'a\'s replica back within its lease');
  }, 20_000);

  it('health says not connected while Redis stalls, found by the verifier with no call of the app\'s, and connected again once it answers', async () => {
    const commandTimeout = 500;
    const verifyInterval = 500;
    const a = instance(server.url, `stall${++prefixes}`, 'a', { commandTimeout, verifyInterval });
    await a.storage.ready();
    expect(a.storage.healthDetails().connected).toBe(true);

    server.pause();
    const stalled = performance.now();
    // The connection stays open: only a call outliving its bound tells (the verifier's, every verifyInterval).
    await pollUntil(() => a.storage.healthDetails().connected === false, 'health to say not connected', { timeoutMs: 10_000 });
    expect(performance.now() - stalled).toBeLessThan(verifyInterval + commandTimeout + SLACK_MS);

    server.resume();
    await pollUntil(() => a.storage.healthDetails().connected === true, 'health to say connected again', { timeoutMs: 10_000 });
  }, 20_000);

  it('lets go of a session its own failed destroy may have destroyed', async () => {
    const prefix = `stale${++prefixes}`;
    const a = instance(proxy.url, prefix, 'a', { commandTimeout: 300, maxStaleness: Infinity });
    await a.storage.ready();
    await expect(a.subject.createSession(7n)).resolves.toBe(true);
    await a.storage.localReadsReady();
    await expect(a.subject.hasSession(7n)).resolves.toBe(true);

    // Redis runs the destroy, but neither its reply nor its entry reaches a.
    expect(proxy.partitionWhere('XREAD')).toBe(1);
    proxy.hold('replies');
    await expect(a.subject.destroySession(7n)).rejects.toBeInstanceOf(SessionStorageUnavailableError);
    expect(a.log.lines).not.toContain('destroyed:7');
    proxy.heal();
    // With an infinite lease the replica would answer forever; it let go of the session, so Redis answers.
    await expect(a.subject.hasSession(7n)).resolves.toBe(false);
  }, 20_000);
});
