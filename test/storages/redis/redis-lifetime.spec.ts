import { SessionSubject } from 'nestjs-mtproto-sessions';
import { RedisSessionStorage } from 'nestjs-mtproto-sessions/redis';
import { ManualClock } from 'nestjs-mtproto-sessions/testing';
import { EventLog } from '../../support/event-log';
import { RecordingLogger } from '../../support/recording-logger';
import { describeRedis, startRedisServer, type RedisServer } from '../../support/redis-server';
import { pollUntil } from '../../support/wait-until';

describeRedis('idle expiry with several instances on one Redis', () => {
  let server: RedisServer;
  let prefixes = 0;
  const subjects: SessionSubject[] = [];

  beforeAll(async () => {
    server = await startRedisServer();
  }, 30_000);
  afterAll(() => server?.stop());
  afterEach(async () => {
    await Promise.all(subjects.splice(0).map((subject) => subject.close()));
  });

  function instances(count: number, options: { idleTimeout: number; sweepInterval?: number; clock?: () => number }) {
    const keyPrefix = `lifetime-${process.pid}-${++prefixes}`;
    return Array.from({ length: count }, (_, i) => {
      const logger = new RecordingLogger();
      const storage = new RedisSessionStorage({ url: server.url, keyPrefix, instanceId: `instance-${i}`, logger, ...options });
      const subject = new SessionSubject(storage, { logger });
      const log = new EventLog();
      subject.subscribe(log);
      subjects.push(subject);
      return { storage, subject, log };
    });
  }

  it('announces each expiry once on every instance, even when all of them sweep at once (manual clock)', async () => {
    const clock = new ManualClock();
    const [a, b, c] = instances(3, { idleTimeout: 1000, sweepInterval: 3_600_000, clock: clock.now });
    await Promise.all([a!, b!, c!].map(({ subject }) => subject.ready()));
    const ids = Array.from({ length: 40 }, (_, i) => BigInt(i) - 20n);
    await Promise.all(ids.map((id, i) => [a, b, c][i % 3]!.subject.createSession(id, i % 2 === 0 ? undefined : 7n)));
    clock.advance(600);
    const kept = ids.filter((_, i) => i % 4 === 0);
    for (const id of kept) await expect(b!.subject.hasSession(id, ids.indexOf(id) % 2 === 0 ? undefined : 7n)).resolves.toBe(true);
    clock.advance(600);
    const swept = await Promise.all([a!.storage.expireIdleSessions(), b!.storage.expireIdleSessions(), c!.storage.expireIdleSessions()]);
    const lapsed = ids.length - kept.length;
    expect(swept.reduce((sum, n) => sum + n, 0)).toBe(lapsed);
    const created = ids.length;
    for (const { log } of [a!, b!, c!]) {
      await log.untilCount(created + lapsed);
      const expiries = log.events.filter((event) => event.reason === 'expired');
      expect(expiries).toHaveLength(lapsed);
      expect(new Set(expiries.map((event) => `${event.authKeyId}:${event.sessionId}`)).size).toBe(lapsed);
      expect(expiries.some((event) => kept.includes(event.sessionId))).toBe(false);
    }
    // Every instance heard the same expiries, each announced by one instance only.
    const originsOf = (log: EventLog) => log.events.filter((e) => e.reason === 'expired').map((e) => `${e.sessionId}@${e.authKeyId}:${e.origin}`).sort();
    expect(originsOf(b!.log)).toEqual(originsOf(a!.log));
    expect(originsOf(c!.log)).toEqual(originsOf(a!.log));
    await expect(a!.storage.count()).resolves.toBe(kept.length);
  });

  it('sweeps by itself on the real clock: lapsed sessions are announced, used ones kept', async () => {
    const [a, b] = instances(2, { idleTimeout: 300, sweepInterval: 20 });
    await Promise.all([a!.subject.ready(), b!.subject.ready()]);
    await a!.subject.createSession(1n);
    await a!.subject.createSession(2n);
    await b!.subject.createSession(3n);
    // Keep session 1 in use, every 100 ms, until 2 and 3 have expired on both instances.
    const bothExpired = () => [a!, b!].every(({ log }) => log.lines.includes('destroyed:2/expired') && log.lines.includes('destroyed:3/expired'));
    const usedUntilBothExpired = async () => {
      await expect(b!.subject.hasSession(1n)).resolves.toBe(true);
      return bothExpired();
    };
    await pollUntil(usedUntilBothExpired, () => `both expiries; a saw ${a!.log.lines.join(', ')}; b saw ${b!.log.lines.join(', ')}`, { timeoutMs: 5000, intervalMs: 100 });
    expect(bothExpired()).toBe(true);
    for (const { log } of [a!, b!]) {
      expect(log.lines.filter((line) => line.endsWith('/expired')).sort()).toEqual(['destroyed:2/expired', 'destroyed:3/expired']);
    }
    await expect(a!.subject.hasSession(1n)).resolves.toBe(true);
  });
});
