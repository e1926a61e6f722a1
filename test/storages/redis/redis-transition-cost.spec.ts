/**
 * What a transition costs inside Redis: the commands its script runs, counted
 * with INFO commandstats (a script's inner commands count too), never timed.
 * A create of a new session runs TIME, ZADD NX, INCR, the origin's HGET and
 * XADD; a destroy TIME, ZSCORE, INCR, HGET, XADD and ZREM. No GET/SET of the
 * sequence, no ZSCORE before a create's ZADD.
 */
import { SessionSubject } from 'nestjs-mtproto-sessions';
import { RedisSessionStorage } from 'nestjs-mtproto-sessions/redis';
import { connectRaw, type RawClient } from '../../support/raw-redis';
import { RecordingLogger } from '../../support/recording-logger';
import { describeRedis, startRedisServer, type RedisServer } from '../../support/redis-server';

/** Calls per command so far (a script's inner commands count too). */
async function commandCalls(raw: RawClient): Promise<Record<string, number>> {
  const text = String(await raw.sendCommand(['INFO', 'commandstats']));
  const calls: Record<string, number> = {};
  for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[match[1]!] = Number(match[2]);
  return calls;
}

/** The commands a transition may run, per transition, between two readings. */
function perTransition(before: Record<string, number>, after: Record<string, number>, transitions: number): Record<string, number> {
  const commands = ['time', 'zscore', 'zadd', 'zrem', 'get', 'set', 'incr', 'decr', 'hget', 'xadd'];
  return Object.fromEntries(commands.map((command) => [command, ((after[command] ?? 0) - (before[command] ?? 0)) / transitions]));
}

describeRedis('what a transition costs inside Redis (real redis-server)', () => {
  let server: RedisServer;
  let raw: RawClient;

  beforeAll(async () => {
    server = await startRedisServer();
    raw = await connectRaw(server.url);
  }, 30_000);
  afterAll(async () => {
    raw?.destroy();
    await server?.stop();
  });

  it('runs five commands for a create of a new session and six for a destroy', async () => {
    const logger = new RecordingLogger();
    // The verifier's reads are not the transitions': it waits a minute here.
    const storage = new RedisSessionStorage({ url: server.url, keyPrefix: `cost-${process.pid}`, logger, verifyInterval: 60_000 });
    const subject = new SessionSubject(storage, { logger });
    try {
      await subject.ready();
      // The origin's first write registers it (HINCRBY, HSET): not the steady cost.
      await subject.createSession(-1n);
      const count = 200;
      const start = await commandCalls(raw);
      for (let id = 0n; id < BigInt(count); id++) await expect(subject.createSession(id)).resolves.toBe(true);
      const created = await commandCalls(raw);
      for (let id = 0n; id < BigInt(count); id++) await expect(subject.destroySession(id)).resolves.toBe(true);
      const destroyed = await commandCalls(raw);

      expect(perTransition(start, created, count)).toEqual({ time: 1, zscore: 0, zadd: 1, zrem: 0, get: 0, set: 0, incr: 1, decr: 0, hget: 1, xadd: 1 });
      expect(perTransition(created, destroyed, count)).toEqual({ time: 1, zscore: 1, zadd: 0, zrem: 1, get: 0, set: 0, incr: 1, decr: 0, hget: 1, xadd: 1 });
    } finally {
      await subject.close();
    }
  });
});
