/**
 * A batch's reply names the stream's entry before its first: when that is
 * where this instance's reader is, the batch's own entries, announced from
 * the reply, follow it directly, and the reader need not read them back.
 * While such batches follow one another, the reader reads nothing (a blocking
 * read would be woken by each), and their replies renew its lease; an entry
 * of another instance's in between makes it read, in stream order. Reads
 * counted with INFO commandstats, never timed.
 */
import { SessionSubject } from 'nestjs-mtproto-sessions';
import { RedisSessionStorage, type RedisSessionStorageOptions } from 'nestjs-mtproto-sessions/redis';
import { ENTRY, ENTRY_TYPE } from '../../../src/storages/redis/redis-stream-entry';
import { EventLog } from '../../support/event-log';
import { connectRaw, type RawClient } from '../../support/raw-redis';
import { RecordingLogger } from '../../support/recording-logger';
import { describeRedis, startRedisServer, type RedisServer } from '../../support/redis-server';
import { startTcpProxy, type TcpProxy } from '../../support/tcp-proxy';

/** Calls of `command` so far. */
async function callsOf(raw: RawClient, command: string): Promise<number> {
  const text = String(await raw.sendCommand(['INFO', 'commandstats']));
  return Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(text)?.[1] ?? 0);
}

/** `cycles` creates and destroys through `subject` (fewer once `stop` says so), `inFlight` sessions at a time: batches follow one another. */
async function burst(subject: SessionSubject, first: number, cycles: number, inFlight: number, stop = () => false): Promise<void> {
  let next = first;
  const end = first + cycles;
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < end && !stop()) {
      const id = BigInt(next++);
      if (!(await subject.createSession(id)) || !(await subject.destroySession(id))) throw new Error(`session ${id} did not change`);
    }
  }));
}

describeRedis('RedisSessionStorage knows the stream\'s end from its batches\' replies', () => {
  let server: RedisServer;
  let proxy: TcpProxy;
  let raw: RawClient;
  const open: (() => Promise<void>)[] = [];
  let prefixes = 0;

  beforeAll(async () => {
    server = await startRedisServer();
    proxy = await startTcpProxy(server.port);
    raw = await connectRaw(server.url);
  }, 30_000);
  afterEach(async () => {
    proxy.heal();
    await Promise.all(open.splice(0).map((close) => close()));
  });
  afterAll(async () => {
    raw?.destroy();
    await proxy?.close();
    await server?.stop();
  });

  function instance(keyPrefix: string, instanceId: string, options: Partial<RedisSessionStorageOptions> & { url?: string } = {}) {
    const logger = new RecordingLogger();
    const storage = new RedisSessionStorage({ url: server.url, keyPrefix, instanceId, logger, verifyInterval: 60_000, ...options });
    const subject = new SessionSubject(storage, { logger });
    const log = new EventLog();
    subject.subscribe(log);
    open.push(() => subject.close());
    return { storage, subject, log, logger };
  }

  /** Ready, the batch script loaded (the first calls issued together go one by one while it loads). */
  async function warm(a: ReturnType<typeof instance>): Promise<void> {
    await a.subject.ready();
    await Promise.all([a.subject.createSession(0n), a.subject.destroySession(0n)]);
    await Promise.all([a.subject.createSession(0n), a.subject.destroySession(0n)]);
  }

  it('reads none of its own entries back while its batches follow one another, each event announced once', async () => {
    const a = instance(`replies${++prefixes}`, 'a');
    await warm(a);
    const before = await callsOf(raw, 'xread');
    const scriptsBefore = await callsOf(raw, 'evalsha');
    await burst(a.subject, 1, 4000, 400);
    const reads = (await callsOf(raw, 'xread')) - before;
    const batches = (await callsOf(raw, 'evalsha')) - scriptsBefore;
    // Many batches, each waking a blocking read if one were waiting: a few reads (at the burst's ends, or when a turn
    // passed with no batch in flight on a busy machine), not one per batch.
    expect(batches).toBeGreaterThan(100);
    expect(reads).toBeLessThan(batches / 10);
    expect(a.log.lines.length).toBe(4 + 8000);
    expect(new Set(a.log.lines.slice(4)).size).toBe(8000);
    expect(a.log.missed).toEqual([]);
    expect(a.logger.warnings).toEqual([]);
  }, 60_000);

  it('reads another instance\'s entries that come between its batches, and announces everything in stream order', async () => {
    const prefix = `replies${++prefixes}`;
    const a = instance(prefix, 'a');
    const b = instance(prefix, 'b');
    await Promise.all([warm(a), b.subject.ready()]);
    const start = a.log.lines.length;
    let writing = true;
    const others = (async () => {
      for (let id = -1; writing && id > -200; id--) await b.subject.createSession(BigInt(id));
    })();
    await burst(a.subject, 1, 3000, 300);
    writing = false;
    await others;
    // A sentinel of b's after everything: once a has it, a has read the whole stream.
    await b.subject.createSession(-1000n);
    await a.log.until(() => a.log.lines.includes('created:-1000'), 'a to hear of b\'s last session');

    const entries = (await raw.xRange(a.storage.redisKeys.events, '-', '+')) ?? [];
    const types: Record<string, string> = { [ENTRY_TYPE.created]: 'created', [ENTRY_TYPE.destroyed]: 'destroyed' };
    const inStream = entries.map((entry) => `${types[entry.message[ENTRY.type]!]}:${entry.message[ENTRY.sessionId]}`);
    const heard = a.log.lines.slice(start);
    expect(heard.filter((line) => line.includes(':-')).length).toBeGreaterThan(1);
    expect(heard).toEqual(inStream.slice(inStream.length - heard.length));
    expect(a.log.missed).toEqual([]);
  }, 60_000);

  it('reads another instance\'s entry within its blocking time while its batches go unanswered', async () => {
    const prefix = `replies${++prefixes}`;
    // Blocking time: half of maxStaleness, 200 ms; a call's bound is far longer.
    const a = instance(prefix, 'a', { url: proxy.url, maxStaleness: 400, commandTimeout: 2500 });
    const b = instance(prefix, 'b');
    await Promise.all([warm(a), b.subject.ready()]);
    let stop = false;
    let next = 1;
    // Until stopped; the calls that were in flight when the command connection was cut fail, past their bound.
    const bursting = Promise.allSettled(Array.from({ length: 200 }, async () => {
      while (!stop) {
        const id = BigInt(next++);
        await a.subject.createSession(id);
        await a.subject.destroySession(id);
      }
    }));
    await a.log.until(() => a.log.lines.length > 2000, 'a\'s burst under way');
    // a's batches in flight go unanswered from now: their replies cannot tell a's reader where the stream ends.
    expect(proxy.partitionWhere('EVALSHA', true)).toBe(1);
    const cutAt = Date.now();
    await expect(b.subject.createSession(-99n)).resolves.toBe(true);
    await a.log.until(() => a.log.lines.includes('created:-99'), 'a to hear of b\'s session while its own calls hang', 1500);
    expect(Date.now() - cutAt).toBeLessThan(1500);
    stop = true;
    proxy.heal();
    await bursting;
  }, 30_000);

  it('keeps its replica\'s lease through a burst longer than maxStaleness', async () => {
    const a = instance(`replies${++prefixes}`, 'a', { maxStaleness: 400 });
    await warm(a);
    await a.storage.localReadsReady();
    const scriptsBefore = await callsOf(raw, 'evalsha');
    let bursting = true;
    const startedAt = Date.now();
    // Nearly four leases' time (bounded by its count too).
    const burstDone = burst(a.subject, 1, 500_000, 400, () => Date.now() - startedAt > 1500).finally(() => (bursting = false));
    // Sampled across several leases' time, while the reader reads (almost) nothing: its bounded waits and the replies renew it.
    const lapsed: number[] = [];
    let samples = 0;
    while (bursting) {
      if (a.storage.healthDetails().localReadsWithinLease !== true) lapsed.push(samples);
      samples++;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await burstDone;
    const batches = (await callsOf(raw, 'evalsha')) - scriptsBefore;
    expect(batches).toBeGreaterThan(100);
    expect(samples).toBeGreaterThan(20);
    expect(lapsed).toEqual([]);
  }, 60_000);
});
