/**
 * Creates and destroys issued in the same turn of the event loop go to
 * Redis together, as one batch script of one key group, in the order issued;
 * each call keeps its own outcome, fence, events and undo. A lone call goes
 * as before, by the create or destroy script.
 */
import { SessionLimitError, SessionStorageUnavailableError, SessionSubject } from 'nestjs-mtproto-sessions';
import { RedisSessionStorage } from 'nestjs-mtproto-sessions/redis';
import type { RedisCommands } from '../../../src/storages/redis/redis-client';
import { keysTagged, NO_DEADLINE } from '../../../src/storages/redis/redis-keys';
import { runScriptBySha } from '../../../src/storages/redis/scripts/define-script';
import { ITEM_FAILED, transitionBatchScript } from '../../../src/storages/redis/scripts/transition-batch.script';
import { LIMIT, TRANSITION } from '../../../src/storages/redis/scripts/transition-status';
import { EventLog } from '../../support/event-log';
import { connectRaw, type RawClient } from '../../support/raw-redis';
import { RecordingLogger } from '../../support/recording-logger';
import { REDIS_CLIENT_KINDS } from '../../support/redis-client-kinds';
import { describeRedis, startRedisServer, type RedisServer } from '../../support/redis-server';

/** Script runs so far (EVALSHA and EVAL), and calls of `command`. */
async function calls(raw: RawClient, command: string): Promise<{ scripts: number; command: number }> {
  const text = String(await raw.sendCommand(['INFO', 'commandstats']));
  const count = (name: string) => Number(new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(text)?.[1] ?? 0);
  return { scripts: count('evalsha') + count('eval'), command: count(command) };
}

describeRedis('RedisSessionStorage sends the transitions of one turn together', () => {
  let server: RedisServer;
  let raw: RawClient;
  const open: (() => Promise<void>)[] = [];
  let prefixes = 0;

  beforeAll(async () => {
    server = await startRedisServer();
    raw = await connectRaw(server.url);
  }, 30_000);
  afterEach(async () => {
    await Promise.all(open.splice(0).map((close) => close()));
  });
  afterAll(async () => {
    raw?.destroy();
    await server?.stop();
  });

  it('runs the calls of a batch in order, each with its own fence, outcome and undo (the script alone)', async () => {
    const keys = keysTagged('batch-script');
    const client = raw as unknown as RedisCommands;
    const [seconds] = (await raw.sendCommand(['TIME'])) as [string, string];
    const future = Number(seconds) * 1000 + 60_000;
    const past = Number(seconds) * 1000 - 1;
    const item = (create: boolean, member: string, fence: number) => ({ create, member, fence });
    const reply = await runScriptBySha(client, transitionBatchScript, keys, {
      origin: 'a', now: Date.now(), maxLength: 100, limit: LIMIT.none, deadline: NO_DEADLINE,
      items: [item(true, '1', future), item(true, '2', past), item(false, '1', future), item(false, '3', future), item(true, '1', future), item(true, '1', 0)],
    });
    expect(reply.outcomes.map((outcome) => outcome.status)).toEqual([TRANSITION.done, TRANSITION.fenced, TRANSITION.done, TRANSITION.unchanged, TRANSITION.done, TRANSITION.unchanged]);
    expect(reply.outcomes.map((outcome) => ('lastSequence' in outcome ? outcome.lastSequence : undefined))).toEqual([1, 0, 2, 0, 3, 0]);
    expect(await raw.zRange(keys.sessions, 0, -1)).toEqual(['1']);
    const entries = await raw.xRange(keys.events, '-', '+');
    expect((entries ?? []).map((entry) => `${entry.message.t}:${entry.message.s}:${entry.message.n}`)).toEqual(['c:1:1', 'd:1:2', 'c:1:3']);
    // The sequence, read once and written back once, is where the INCRs would have left it.
    expect(await raw.get(keys.sequence)).toBe('3');

    // Destroys of a lapsed session (expired instead), one with a deadline ahead, one with none.
    const lapsing = keysTagged('batch-lapsing');
    const nowMs = Number(seconds) * 1000;
    await raw.zAdd(lapsing.sessions, [{ score: nowMs - 5_000, value: 'lapsed' }, { score: nowMs + 60_000, value: 'ahead' }, { score: NO_DEADLINE, value: 'forever' }]);
    const destroyed = await runScriptBySha(client, transitionBatchScript, lapsing, {
      origin: 'a', now: nowMs, maxLength: 100, limit: LIMIT.none, deadline: NO_DEADLINE,
      items: [item(false, 'lapsed', future), item(false, 'ahead', future), item(false, 'forever', future)],
    });
    expect(destroyed.outcomes.map((outcome) => outcome.status)).toEqual([TRANSITION.unchanged, TRANSITION.done, TRANSITION.done]);
    const lapsingEntries = await raw.xRange(lapsing.events, '-', '+');
    expect((lapsingEntries ?? []).map((entry) => `${entry.message.t}:${entry.message.s}`)).toEqual(['x:lapsed', 'd:ahead', 'd:forever']);
    expect(await raw.zCard(lapsing.sessions)).toBe(0);

    // A stream key of the wrong type: every call fails alone, and takes back what it wrote.
    const broken = keysTagged('batch-broken');
    await raw.set(broken.events, 'not a stream');
    await raw.zAdd(broken.sessions, { score: NO_DEADLINE, value: '9' });
    const failed = await runScriptBySha(client, transitionBatchScript, broken, {
      origin: 'a', now: Date.now(), maxLength: 100, limit: LIMIT.none, deadline: NO_DEADLINE, items: [item(true, '1', future), item(false, '9', future)],
    });
    expect(failed.outcomes).toEqual([
      { status: ITEM_FAILED, error: expect.stringMatching(/WRONGTYPE/) },
      { status: ITEM_FAILED, error: expect.stringMatching(/WRONGTYPE/) },
    ]);
    expect(await raw.zRange(broken.sessions, 0, -1)).toEqual(['9']);
    expect(await raw.get(broken.sequence)).toBeNull();

    // A sequence key that holds no integer: the batch fails as a whole, as each call's INCR would, and changes nothing.
    const garbled = keysTagged('batch-garbled');
    await raw.set(garbled.sequence, 'x');
    await expect(runScriptBySha(client, transitionBatchScript, garbled, {
      origin: 'a', now: Date.now(), maxLength: 100, limit: LIMIT.none, deadline: NO_DEADLINE, items: [item(true, '1', future), item(true, '2', future)],
    })).rejects.toThrow(/sequence key holds no integer/);
    expect(await raw.exists([garbled.sessions, garbled.events])).toBe(0);
  });

  it('writes each entry\'s sequence number as Redis would format it, across hundreds and up to 10^15 and past', async () => {
    const client = raw as unknown as RedisCommands;
    const [seconds] = (await raw.sendCommand(['TIME'])) as [string, string];
    const fence = Number(seconds) * 1000 + 60_000;
    const starts = [0n, 97n, 199n, 9_998n, 123_456_789_099n, 10n ** 15n - 3n, 2n ** 53n - 70n];
    for (const [index, start] of starts.entries()) {
      const keys = keysTagged(`batch-sequence-${index}`);
      await raw.set(keys.sequence, String(start));
      // 66 entries: a create and a destroy of 33 sessions, in two batches (the second continues from the first's SET).
      const items = Array.from({ length: 33 }, (_, i) => [{ create: true, member: `${i}`, fence }, { create: false, member: `${i}`, fence }]).flat();
      for (const part of [items.slice(0, 40), items.slice(40)]) {
        await runScriptBySha(client, transitionBatchScript, keys, { origin: 'a', now: Date.now(), maxLength: 1000, limit: LIMIT.none, deadline: NO_DEADLINE, items: part });
      }
      const written = ((await raw.xRange(keys.events, '-', '+')) ?? []).map((entry) => entry.message.n);
      expect(written).toEqual(Array.from({ length: 66 }, (_, i) => String(start + BigInt(i) + 1n)));
      expect(await raw.get(keys.sequence)).toBe(String(start + 66n));
    }
  });

  for (const kind of REDIS_CLIENT_KINDS) {
    describe(`on ${kind.name}`, () => {
      function instance(options: { maxSessions?: number; keyPrefix?: string } = {}) {
        const keyPrefix = options.keyPrefix ?? `batch${++prefixes}`;
        const { options: client, release } = kind.connect(server.url);
        const logger = new RecordingLogger();
        const storage = new RedisSessionStorage({ ...client, keyPrefix, logger, maxSessions: options.maxSessions, verifyInterval: 60_000 });
        const subject = new SessionSubject(storage, { logger });
        const log = new EventLog();
        subject.subscribe(log);
        open.push(() => subject.close().finally(release));
        return { storage, subject, log, logger, keyPrefix };
      }

      /** Ready, with the batch script loaded: the first calls issued together go one by one while it loads. */
      async function warm(a: ReturnType<typeof instance>): Promise<void> {
        await a.subject.ready();
        await Promise.all([a.subject.createSession(0n), a.subject.destroySession(0n)]);
      }

      it('sends the creates and destroys of one turn as one script, in order, and announces each event once, here and elsewhere', async () => {
        const a = instance();
        const b = instance({ keyPrefix: a.keyPrefix });
        // B knows where the stream ends before A writes anything: it hears every event from A's first.
        await Promise.all([a.subject.ready(), b.subject.ready()]);
        await warm(a);
        await a.subject.createSession(0n);
        const before = await calls(raw, 'time');
        const ids = Array.from({ length: 40 }, (_, i) => BigInt(i + 1));
        // Each session's create and destroy, issued back to back in one turn: a destroy sent before its create would resolve false.
        const outcomes = await Promise.all(ids.flatMap((id) => [a.subject.createSession(id), a.subject.destroySession(id)]));
        const after = await calls(raw, 'time');
        expect(outcomes.every((changed) => changed)).toBe(true);
        // 80 calls: two batches of at most 64, each reading Redis's clock once.
        expect(after.scripts - before.scripts).toBe(2);
        expect(after.command - before.command).toBe(2);
        const expected = ['created:0', 'destroyed:0', 'created:0', ...ids.flatMap((id) => [`created:${id}`, `destroyed:${id}`])];
        expect(a.log.lines).toEqual(expected);
        await b.log.until(() => b.log.lines.length >= expected.length, 'the events at the other instance');
        expect(b.log.lines).toEqual(expected);
        await expect(a.storage.count()).resolves.toBe(1);
        expect(a.logger.warnings).toEqual([]);
      });

      it('sends the first calls issued together one by one while it loads the batch script, so that every batch goes by its hash', async () => {
        const a = instance();
        await a.subject.ready();
        await a.subject.createSession(0n);
        const before = await calls(raw, 'evalsha');
        await expect(Promise.all([a.subject.createSession(1n), a.subject.destroySession(1n)])).resolves.toEqual([true, true]);
        const loaded = await calls(raw, 'evalsha');
        // The create by its hash, the destroy by its source (its first), then the batch script's source with no call.
        expect(loaded.scripts - before.scripts).toBe(3);
        await expect(Promise.all([a.subject.createSession(1n), a.subject.destroySession(1n)])).resolves.toEqual([true, true]);
        const after = await calls(raw, 'evalsha');
        expect(after.scripts - loaded.scripts).toBe(1);
        expect(after.command - loaded.command).toBe(1);
      });

      it('sends a lone call by the create or destroy script, as before', async () => {
        const a = instance();
        await a.subject.ready();
        await a.subject.createSession(0n);
        const before = await calls(raw, 'time');
        await expect(a.subject.createSession(1n)).resolves.toBe(true);
        await expect(a.subject.destroySession(1n)).resolves.toBe(true);
        const after = await calls(raw, 'time');
        expect(after.scripts - before.scripts).toBe(2);
        expect(after.command - before.command).toBe(2);
      });

      it('keeps one group\'s limit within a batch: the calls past it fail alone', async () => {
        const a = instance({ maxSessions: 5 });
        await warm(a);
        const outcomes = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => a.subject.createSession(BigInt(i + 1))));
        expect(outcomes.slice(0, 5).every((outcome) => outcome.status === 'fulfilled' && outcome.value)).toBe(true);
        for (const outcome of outcomes.slice(5)) {
          expect(outcome.status).toBe('rejected');
          expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(SessionLimitError);
        }
        await expect(a.storage.count()).resolves.toBe(5);
        expect(a.log.lines.slice(2)).toEqual(['created:1', 'created:2', 'created:3', 'created:4', 'created:5']);
      });

      it('fails each call of a batch whose events cannot be recorded, and changes nothing', async () => {
        const a = instance();
        await warm(a);
        await raw.del(a.storage.redisKeys.events);
        await raw.set(a.storage.redisKeys.events, 'not a stream');
        const outcomes = await Promise.allSettled([a.subject.createSession(1n), a.subject.createSession(2n), a.subject.destroySession(3n)]);
        expect(outcomes.slice(0, 2).map((outcome) => outcome.status)).toEqual(['rejected', 'rejected']);
        expect((outcomes[0] as PromiseRejectedResult).reason).toBeInstanceOf(SessionStorageUnavailableError);
        expect(String(((outcomes[0] as PromiseRejectedResult).reason as Error).cause)).toMatch(/WRONGTYPE/);
        // Nothing to destroy: it resolves false without an event.
        expect(outcomes[2]).toEqual({ status: 'fulfilled', value: false });
        expect(await raw.zCard(a.storage.redisKeys.sessions)).toBe(0);
      });
    });
  }
});
