/**
 * The quota ledger step by step, on a real redis-server: what a failed call
 * leaves between its two scripts (run here by hand, as the call would have),
 * and the keys a loss or a hand leaves behind, each brought back to a pool +
 * quotas that add up to maxSessions and never past it.
 */
import { SessionLimitError } from 'nestjs-mtproto-sessions';
import { RedisSessionStorage, type RedisSessionStorageOptions } from 'nestjs-mtproto-sessions/redis';
import { HEAL_INTERVAL_MS } from '../../../src/storages/redis/redis-quota-healer';
import { layoutKeys, type RedisLayoutKeys, type RedisSessionKeys } from '../../../src/storages/redis/redis-keys';
import type { RedisScript } from '../../../src/storages/redis/scripts/define-script';
import { createSessionScript } from '../../../src/storages/redis/scripts/create-session.script';
import { groupRecountScript } from '../../../src/storages/redis/scripts/group-recount.script';
import { poolRecountStartScript } from '../../../src/storages/redis/scripts/pool-recount-start.script';
import { poolTakeScript } from '../../../src/storages/redis/scripts/pool-take.script';
import { POOL_STATUS } from '../../../src/storages/redis/scripts/quota-status';
import { LIMIT, TRANSITION } from '../../../src/storages/redis/scripts/transition-status';
import { connectRaw, type RawClient } from '../../support/raw-redis';
import { RecordingLogger } from '../../support/recording-logger';
import { describeRedis, startRedisServer, type RedisServer } from '../../support/redis-server';
import { spreadId } from '../../support/session-test-helpers';
import { pollUntil } from '../../support/wait-until';

describeRedis('the quota ledger (real redis-server, shards: 4)', () => {
  let server: RedisServer;
  let raw: RawClient;
  const open: RedisSessionStorage[] = [];
  let prefixes = 0;
  const freshPrefix = () => `quota-ledger-${process.pid}-${++prefixes}`;

  beforeAll(async () => {
    server = await startRedisServer();
    raw = await connectRaw(server.url);
  });
  afterAll(async () => {
    raw?.destroy();
    await server?.stop();
  });
  afterEach(async () => {
    await Promise.allSettled(open.splice(0).map((storage) => storage.close()));
  });

  function storage(keyPrefix: string, options: Partial<RedisSessionStorageOptions> = {}): { storage: RedisSessionStorage; logger: RecordingLogger } {
    const logger = new RecordingLogger();
    const made = new RedisSessionStorage({ url: server.url, keyPrefix, shards: 4, maxSessions: 20, logger, ...options });
    open.push(made);
    return { storage: made, logger };
  }

  /** Runs a script as the storage would, on the test's own connection. */
  async function run<A, R, K>(script: RedisScript<A, R, K>, keys: K, args: A): Promise<R> {
    return script.parse(await raw.eval(script.source, { keys: script.keys(keys, args), arguments: script.args(args) }));
  }

  async function redisNow(): Promise<number> {
    const [seconds, micros] = (await raw.sendCommand(['TIME'])) as [string, string];
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  }

  /** The pool, and every group's quota, as Redis holds them now. */
  async function quota(layout: RedisLayoutKeys, groups: readonly RedisSessionKeys[]): Promise<{ pool: number; groups: number[] }> {
    const values = await Promise.all([layout.pool, ...groups.map((keys) => keys.quota)].map((key) => raw.get(key)));
    return { pool: Number(values[0] ?? 0), groups: values.slice(1).map((value) => Number(value ?? 0)) };
  }

  /** Tries `tries` creates of new sessions; resolves how many succeeded (the rest refused for the limit). */
  async function createsAllowed(store: RedisSessionStorage, tries: number): Promise<number> {
    let created = 0;
    for (let i = 0; i < tries; i++) {
      try {
        if (await store.createSession(spreadId(i))) created++;
      } catch (error) {
        expect(error).toBeInstanceOf(SessionLimitError);
      }
    }
    return created;
  }

  const sum = (values: readonly number[]) => values.reduce((total, value) => total + value, 0);

  /** Takes `most` for group 0 as a create would, and then nothing: its call failed between its two scripts. */
  async function strandedTake(layout: RedisLayoutKeys, groupFenceMs: number) {
    const now = await redisNow();
    const taken = await run(poolTakeScript, layout, { fence: now + 10_000, most: 1, groups: 4, group: 0, groupFence: now + groupFenceMs });
    if (taken.status !== POOL_STATUS.done) throw new Error(`the take was refused: ${taken.status}`);
    return taken;
  }

  /** The create script run with `grant`, for group 0, under a fence far ahead (a late call, or a clock that lags). */
  function lateCreate(keys: RedisSessionKeys, member: string, grant: { id: string; incarnation: string }) {
    return run(createSessionScript, keys, {
      origin: 'late', now: Date.now(), maxLength: 1000, fence: Date.now() + 60_000, member, deadline: Number.MAX_SAFE_INTEGER,
      limit: LIMIT.quotaKey, grant: 1, grantId: grant.id, incarnation: grant.incarnation,
    });
  }

  it('returns a take whose create never ran once its fence has passed, and says so', async () => {
    const prefix = freshPrefix();
    const { storage: store, logger } = storage(prefix);
    await store.createSession(spreadId(0));
    const layout = layoutKeys(prefix);
    const before = await quota(layout, store.keyGroups);
    expect(before.pool + sum(before.groups)).toBe(20);

    const fenceMs = 300;
    const started = performance.now();
    await strandedTake(layout, fenceMs);
    expect((await quota(layout, store.keyGroups)).pool).toBe(before.pool - 1);
    await pollUntil(async () => (await quota(layout, store.keyGroups)).pool === before.pool, 'the take back in the pool', { timeoutMs: 10_000 });
    // Its fence, then the next healing pass, and the scripts of that pass.
    expect(performance.now() - started).toBeLessThanOrEqual(fenceMs + HEAL_INTERVAL_MS + 1000);
    expect(await quota(layout, store.keyGroups)).toEqual(before);
    expect(logger.warnings).toEqual([expect.stringMatching(/^Returned 1 of the session limit to .*pool: calls that failed/)]);
    // Nothing left in flight.
    expect((await raw.hKeys(layout.ledger)).filter((field) => field.startsWith('e:'))).toEqual([]);
  });

  it('adds nothing for a grant that lands after its group refused it, even under a fence that has not passed', async () => {
    const prefix = freshPrefix();
    const { storage: store } = storage(prefix);
    await store.createSession(spreadId(0));
    const layout = layoutKeys(prefix);
    const group = store.keyGroups[0]!;
    const before = await quota(layout, store.keyGroups);
    const taken = await strandedTake(layout, 50);
    await pollUntil(async () => (await quota(layout, store.keyGroups)).pool === before.pool, 'the healer to refuse the grant and return it');

    const member = String([...Array(100).keys()].map((i) => spreadId(i)).find((id) => store.keysOf(id) === group));
    const reply = await lateCreate(group, member, taken);
    // Judged by the quota the group held: the grant took no part.
    expect([TRANSITION.done, TRANSITION.quotaUsedUp]).toContain(reply.status);
    expect(await quota(layout, store.keyGroups)).toEqual(before);
  });

  it('refuses a grant of a ledger that was lost once its group was recounted, and recounts the pool to the quotas the groups kept', async () => {
    const prefix = freshPrefix();
    const { storage: store, logger } = storage(prefix);
    for (let i = 0; i < 8; i++) await store.createSession(spreadId(i));
    const layout = layoutKeys(prefix);
    const group = store.keyGroups[0]!;
    // A grant on its way when the pool's node lost its data: its fence far ahead.
    const taken = await strandedTake(layout, 60_000);
    await raw.del([layout.pool, layout.ledger, layout.layout]);
    await pollUntil(async () => (await raw.hGet(layout.ledger, 'counted')) === '1', 'the recount to finish');
    expect(await raw.hGet(layout.ledger, 'inc')).not.toBe(taken.incarnation);
    const after = await quota(layout, store.keyGroups);
    expect(after.pool + sum(after.groups)).toBe(20);
    expect(logger.warnings).toContainEqual(expect.stringMatching(/^Recounted the session limit of .*: the key groups hold \d+ of maxSessions 20, the pool now \d+/));

    const member = String([...Array(100).keys()].map((i) => spreadId(i)).find((id) => store.keysOf(id) === group));
    await lateCreate(group, member, taken);
    expect((await quota(layout, store.keyGroups)).groups).toEqual(after.groups);
  });

  it('leaves the pool alone when the layout record is written again after it was deleted: never past the limit', async () => {
    const prefix = freshPrefix();
    const { storage: first } = storage(prefix);
    let created = 0;
    for (let i = 0; created < 20; i++) if (await first.createSession(spreadId(i))) created++;
    await expect(first.createSession(spreadId(1000))).rejects.toBeInstanceOf(SessionLimitError);
    const layout = layoutKeys(prefix);
    const before = await quota(layout, first.keyGroups);
    // The record alone is gone (deleted by hand, evicted); an instance that starts now records it again.
    await raw.del(layout.layout);
    const { storage: second } = storage(prefix);
    await second.ready();
    await expect(raw.hGetAll(layout.layout)).resolves.toMatchObject({ shards: '4', maxSessions: '20' });
    expect(await quota(layout, first.keyGroups)).toEqual(before);
    for (let i = 2000; i < 2040; i++) await expect(second.createSession(spreadId(i))).rejects.toBeInstanceOf(SessionLimitError);
    await expect(second.count()).resolves.toBe(20);
  });

  it('adopts the pool an earlier version kept: lowers it to fit, never raises it', async () => {
    const prefix = freshPrefix();
    const layout = layoutKeys(prefix);
    // An earlier version's keys: the layout record and a pool 10 short of the limit (lost to failed calls), no ledger.
    await raw.hSet(layout.layout, { layout: 'groups-v1', shards: '4', maxSessions: '20' });
    await raw.set(layout.pool, '10');
    const { storage: store, logger } = storage(prefix);
    const created = await createsAllowed(store, 30);
    expect(created).toBe(10);
    expect(logger.warnings).toContainEqual(expect.stringMatching(/^Recounted the session limit .* the pool now 10$/));
    await expect(raw.hGet(layout.ledger, 'counted')).resolves.toBe('1');
  });

  it('recounts again after a recount cut off between its start and its finish: the pool it created empty never stays so', async () => {
    const prefix = freshPrefix();
    const layout = layoutKeys(prefix);
    // A new prefix's first recount, cut off before its finish (its connection killed): the pool exists, empty, and
    // the ledger has an incarnation, but nothing was counted. Its hold lapses at once.
    const groups = storage(prefix).storage.keyGroups;
    await Promise.all(open.splice(0).map((closing) => closing.close()));
    const started = await run(poolRecountStartScript, layout, { id: 'cut-off', until: (await redisNow()) - 1 });
    if (!started.started) throw new Error('the recount did not start');
    // Its groups were read (each records the ledger's incarnation); the finish never came.
    for (const keys of groups) await run(groupRecountScript, keys, { incarnation: started.incarnation, low: started.low, transfers: [] });
    await expect(raw.get(layout.pool)).resolves.toBe('0');
    const { storage: store } = storage(prefix);
    const created = await createsAllowed(store, 30);
    expect(created).toBe(20);
    await expect(raw.hGet(layout.ledger, 'counted')).resolves.toBe('1');
  });

  it('states the real count in a refusal, with one key group too', async () => {
    const prefix = freshPrefix();
    const { storage: single } = storage(prefix, { shards: 1, maxSessions: 2 });
    await single.createSession(1n);
    await single.createSession(2n);
    const refusal = single.createSession(3n);
    await expect(refusal).rejects.toBeInstanceOf(SessionLimitError);
    await expect(refusal).rejects.toMatchObject({ limit: 2, live: 2, message: 'Session limit reached: 2 live sessions exist, maxSessions is 2' });
  });
});
