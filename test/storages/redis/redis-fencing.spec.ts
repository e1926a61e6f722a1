/**
 * Fenced transitions: a create or destroy whose caller was told it failed
 * never takes effect afterwards, whether Redis was stalled (SIGSTOP) or the
 * network held the command (a partition that TCP outlasts). It may have
 * happened before the caller was told; then its event is delivered.
 */
import { SessionStorageUnavailableError, SessionSubject } from 'nestjs-mtproto-sessions';
import { RedisSessionStorage } from 'nestjs-mtproto-sessions/redis';
import type { RedisCommands } from '../../../src/storages/redis/redis-client';
import { keysTagged, NO_DEADLINE } from '../../../src/storages/redis/redis-keys';
import { createSessionScript } from '../../../src/storages/redis/scripts/create-session.script';
import { runScriptBySha } from '../../../src/storages/redis/scripts/define-script';
import { destroySessionScript } from '../../../src/storages/redis/scripts/destroy-session.script';
import { LIMIT, TRANSITION } from '../../../src/storages/redis/scripts/transition-status';
import { EventLog } from '../../support/event-log';
import { connectRaw, type RawClient } from '../../support/raw-redis';
import { RecordingLogger } from '../../support/recording-logger';
import { REDIS_CLIENT_KINDS } from '../../support/redis-client-kinds';
import { describeRedis, startRedisServer, type RedisServer } from '../../support/redis-server';
import { startTcpProxy, type TcpProxy } from '../../support/tcp-proxy';

// Long enough for the set-up calls on a loaded machine: a call that reaches Redis past it is refused.
const COMMAND_TIMEOUT = 1000;
const CREATES = Array.from({ length: 20 }, (_, i) => BigInt(1000 + i));
const DESTROYS = [1n, 2n, 3n, 4n, 5n];

/** What a reconnect does to every clock of the storage's: their offsets are unknown again (RedisClock). */
function forgetClocks(storage: RedisSessionStorage): void {
  (storage as unknown as { connection: { generation: number } }).connection.generation++;
}

describeRedis('RedisSessionStorage fences its transitions', () => {
  let server: RedisServer;
  let proxy: TcpProxy;
  let raw: RawClient;
  const open: (() => Promise<void>)[] = [];
  let prefixes = 0;

  beforeAll(async () => {
    server = await startRedisServer();
    proxy = await startTcpProxy(server.port);
    raw = await connectRaw(server.url);
  });

  afterEach(async () => {
    server.resume();
    proxy.heal();
    await Promise.all(open.splice(0).map((close) => close()));
  });

  afterAll(async () => {
    await raw.close();
    await proxy.close();
    await server.stop();
  });

  it('runs a transition script before its fence and refuses it past, to the millisecond (TIME read as digit strings)', async () => {
    const keys = keysTagged('fence-ms');
    const redisMs = async () => {
      const [seconds, micros] = (await raw.sendCommand(['TIME'])) as [string, string];
      return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    };
    // The raw node-redis client, as the storage's command client.
    const client = raw as unknown as RedisCommands;
    const common = { origin: 'a', maxLength: 100, grant: 0, grantId: '', incarnation: '', deadline: NO_DEADLINE, limit: LIMIT.none };
    const create = (member: string, fence: number) => runScriptBySha(client, createSessionScript, keys, { ...common, now: Date.now(), fence, member });
    const destroy = (member: string, fence: number) => runScriptBySha(client, destroySessionScript, keys, { ...common, now: Date.now(), fence, member });
    let now = await redisMs();
    // The millisecond before now (most often within the same second: compared as numbers), the last one of the
    // second before (compared as strings), and fences ahead, within the second or the next one, and far off.
    const past = [now - 1, Math.floor(now / 1000) * 1000 - 1, now - 5000];
    for (const [i, fence] of past.entries()) {
      await expect(create(`p${i}`, fence)).resolves.toMatchObject({ status: TRANSITION.fenced, eventIds: [] });
      expect(await raw.zScore(keys.sessions, `p${i}`)).toBeNull();
    }
    now = await redisMs();
    for (const [i, fence] of [now + 900, now + 60_000].entries()) {
      const created = await create(`f${i}`, fence);
      expect(created).toMatchObject({ status: TRANSITION.done, eventIds: [expect.any(String)] });
      // The reply's clock, made ms from TIME's two strings, is Redis's.
      expect(Math.abs(created.redisMs - now)).toBeLessThan(900);
      await expect(destroy(`f${i}`, now - 1)).resolves.toMatchObject({ status: TRANSITION.fenced });
      expect(await raw.zScore(keys.sessions, `f${i}`)).not.toBeNull();
      await expect(destroy(`f${i}`, now + 60_000)).resolves.toMatchObject({ status: TRANSITION.done });
    }
    expect(await raw.xLen(keys.events)).toBe(4);
  });

  for (const kind of REDIS_CLIENT_KINDS) {
    describe(`on ${kind.name}`, () => {
      function instance(url: string) {
        const keyPrefix = `fence${++prefixes}`;
        const { options, release } = kind.connect(url);
        const logger = new RecordingLogger();
        const storage = new RedisSessionStorage({ ...options, keyPrefix, instanceId: 'a', commandTimeout: COMMAND_TIMEOUT, logger });
        const subject = new SessionSubject(storage, { logger });
        const log = new EventLog();
        subject.subscribe(log);
        open.push(() => subject.close().finally(release));
        return { storage, subject, log };
      }

      /** Calls told they failed while `fault` holds their commands; then the fault ends and a later create goes through. */
      async function expectNoLateEffect(url: string, fault: { start(): void; end(): void }): Promise<void> {
        const a = instance(url);
        for (const id of DESTROYS) await expect(a.subject.createSession(id)).resolves.toBe(true);
        await a.log.untilCount(DESTROYS.length);
        const before = a.log.lines.length;

        fault.start();
        const outcomes = await Promise.allSettled([
          ...CREATES.map((id) => a.subject.createSession(id)),
          ...DESTROYS.map((id) => a.subject.destroySession(id)),
        ]);
        for (const outcome of outcomes) {
          expect(outcome.status).toBe('rejected');
          expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(SessionStorageUnavailableError);
        }
        fault.end();

        // A create after the fault, on the same connection: once its event is here, anything sent before it has run or never will.
        await expect(a.subject.createSession(4242n)).resolves.toBe(true);
        await a.log.until(() => a.log.lines.includes('created:4242'), 'the create after the fault');
        expect(a.log.lines.slice(before)).toEqual(['created:4242']);
        const keys = a.storage.redisKeys;
        for (const id of CREATES) expect(await raw.zScore(keys.sessions, String(id))).toBeNull();
        for (const id of DESTROYS) expect(await raw.zScore(keys.sessions, String(id))).not.toBeNull();
        for (const id of DESTROYS) await expect(a.subject.hasSession(id)).resolves.toBe(true);
      }

      it('keeps the order of calls while it reads Redis\'s clock: a destroy issued after its create never runs first', async () => {
        const a = instance(server.url);
        await a.storage.ready();
        // Each round starts with the clock's offset unknown (a new connection generation, as after a reconnect); every
        // millisecond a session is created and the one created the millisecond before destroyed, as a paced load does.
        // A destroy issued once an earlier call had learnt the offset used to go out before its create, still waiting
        // for a clock reading of its own, and resolved false.
        const outcomes: Promise<boolean>[] = [];
        let next = 0n;
        for (let round = 0; round < 10; round++) {
          forgetClocks(a.storage);
          let previous: bigint | undefined;
          for (let tick = 0; tick < 20; tick++) {
            const id = next++;
            outcomes.push(a.subject.createSession(id));
            if (previous !== undefined) outcomes.push(a.subject.destroySession(previous));
            previous = id;
            await new Promise((resolve) => setTimeout(resolve, 1));
          }
          outcomes.push(a.subject.destroySession(previous!));
        }
        const results = await Promise.all(outcomes);
        expect(results.filter((changed) => !changed).length).toBe(0);
        await expect(a.storage.count()).resolves.toBe(0);
      }, 30_000);

      it('through a stall of Redis (SIGSTOP, then SIGCONT)', async () => {
        await expectNoLateEffect(server.url, { start: () => server.pause(), end: () => server.resume() });
      }, 30_000);

      it('through a partition that holds the commands and then delivers them', async () => {
        await expectNoLateEffect(proxy.url, { start: () => proxy.hold(), end: () => proxy.heal() });
      }, 30_000);
    });
  }
});
