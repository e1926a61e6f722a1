/**
 * RedisSessionStorage's local replica (localReads), on a redis-server the
 * suite starts itself, two instances on one key prefix (A writes, B looks up):
 *
 * - sequential `await subject.hasSession(id)` of live sessions on B against an
 *   InMemorySessionStorage in the same process, and against raw EXISTS;
 * - Redis commands per lookup on B (INFO commandstats, a script's inner
 *   commands included), with and without idleTimeout, against localReads: false;
 * - staleness: how long after A's destroySession resolved B still answers true;
 * - the replica's bytes per session; seeding 10^6 sessions (time, and the
 *   longest the event loop was held) against a bare ZSCAN of the same set;
 * - Redis bytes per live session at 10^5 live after 10^6 transitions with
 *   default options, the sorted set and the stream apart.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { createClient } from 'redis';
import { InMemorySessionStorage, SessionSubject } from '../../src/index.js';
import { RedisSessionStorage } from '../../src/storages/redis/index.js';
import { defineTask, type Json, type Suite, type SuiteContext } from '../harness.js';
import { expectEqual, RecordingLogger, sizeText } from '../support.js';
import { inFlight, percentile, randomIds, redisServerAvailable, startRedisServer } from './redis.js';

const IN_FLIGHT = 1000;
function rawClient(url: string) {
  return createClient({ url, commandOptions: { timeout: 0 } });
}
type Raw = ReturnType<typeof rawClient>;

/** Calls of every command since the last CONFIG RESETSTAT, but the suite's own INFO and CONFIG. */
async function commandCalls(raw: Raw): Promise<number> {
  const text = String(await raw.sendCommand(['INFO', 'commandstats']));
  let calls = 0;
  for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (!/^(info|config)/.test(match[1]!)) calls += Number(match[2]);
  }
  return calls;
}

async function memoryUsage(raw: Raw, key: string): Promise<number> {
  return Number(await raw.sendCommand(['MEMORY', 'USAGE', key, 'SAMPLES', '0']));
}

/** Raw internals the figures read (the replica's typed arrays), through the storage's private fields. */
function replicaOf(storage: RedisSessionStorage): { byteSize(): number; size: number } {
  return (storage as unknown as { groups: { replica: { byteSize(): number; size: number } }[] }).groups[0]!.replica;
}

export const replicaSuite: Suite = {
  name: 'replica',
  description: 'RedisSessionStorage local replica: hasSession vs in-memory and EXISTS, Redis commands per lookup, staleness, replica memory, seeding, Redis bytes per live session',
  async run(ctx) {
    const ids = [
      'replica.has-vs-in-memory', 'replica.has-vs-exists', 'replica.commands-per-lookup', 'replica.commands-per-lookup-idle',
      'replica.staleness-p50', 'replica.staleness-p99', 'replica.bytes-unscoped', 'replica.bytes-idle',
      'replica.seed-seconds', 'replica.seed-longest-block', 'replica.redis-bytes-sorted-set', 'replica.redis-bytes-stream', 'replica.redis-bytes-total',
      'replica.latency-processes-p50', 'replica.latency-processes-p99',
    ] as const;
    if (!redisServerAvailable()) {
      for (const id of ids) ctx.figure({ id, label: id, unit: 'ms', better: 'lower', value: null, baseline: null, unavailable: 'redis-server not on PATH' });
      return;
    }
    const server = await startRedisServer();
    ctx.progress(`redis-server at ${server.url}`);
    const logger = new RecordingLogger();
    const closables: { close(): Promise<unknown> }[] = [];
    try {
      const raw = rawClient(server.url);
      raw.on('error', (error: unknown) => logger.error(`raw: ${String(error)}`));
      await raw.connect();
      closables.push(raw);
      await processLatency(ctx, server.url, raw, logger, closables);
      await lookups(ctx, server.url, raw, logger, closables);
      await staleness(ctx, server.url, raw, logger, closables);
      await seeding(ctx, server.url, raw, logger);
      await redisBytes(ctx, server.url, raw, logger, closables);
      logger.assertQuiet('the replica suite');
    } finally {
      for (const closable of closables.reverse()) await closable.close().catch(() => undefined);
      await server.stop();
    }
  },
};

function pair(url: string, keyPrefix: string, logger: RecordingLogger, closables: { close(): Promise<unknown> }[], options: object = {}) {
  const make = (instanceId: string) => {
    const storage = new RedisSessionStorage({ url, keyPrefix, instanceId, logger, ...options });
    const subject = new SessionSubject(storage, { logger });
    closables.push(subject);
    return { storage, subject };
  };
  return { a: make('a'), b: make('b') };
}

async function lookups(ctx: SuiteContext, url: string, raw: Raw, logger: RecordingLogger, closables: { close(): Promise<unknown> }[]): Promise<void> {
  const n = ctx.pick({ quick: 10_000, default: 100_000 });
  const count = ctx.pick({ quick: 20_000, default: 1_000_000 });
  const live = randomIds(n, 31);
  const order = new Uint32Array(count);
  for (let i = 0, x = 7; i < count; i++) order[i] = (x = (x * 1103515245 + 12345) >>> 0) % n;

  const { a, b } = pair(url, 'replica-lookups', logger, closables);
  const off = new RedisSessionStorage({ url, keyPrefix: 'replica-lookups', instanceId: 'off', localReads: false, logger });
  const offSubject = new SessionSubject(off, { logger });
  closables.push(offSubject);
  await Promise.all([a.subject.ready(), b.subject.ready(), offSubject.ready()]);
  ctx.progress(`creating ${sizeText(n)} sessions on A`);
  expectEqual(await inFlight(n, IN_FLIGHT, (i) => a.subject.createSession(live[i])), n, 'sessions created');
  expectEqual(await inFlight(n, IN_FLIGHT, async (i) => (await raw.set(`raw:${live[i]}`, '1')) === 'OK'), n, 'raw keys set');
  await b.storage.localReadsReady();
  const memory = new InMemorySessionStorage();
  const memorySubject = new SessionSubject(memory);
  for (const id of live) await memorySubject.createSession(id);

  const sequential = (subject: SessionSubject, what: string) => ({
    ops: count,
    async run() {
      let hits = 0;
      for (let i = 0; i < count; i++) if (await subject.hasSession(live[order[i]])) hits++;
      expectEqual(hits, count, `${what} hits`);
    },
  });
  ctx.progress(`${count} sequential lookups of live sessions per round`);
  const rates = await ctx.rates({
    replica: sequential(b.subject, 'replica'),
    memory: sequential(memorySubject, 'in-memory'),
    exists: {
      ops: Math.min(count, 200_000),
      async run() {
        const m = Math.min(count, 200_000);
        expectEqual(await inFlight(m, IN_FLIGHT, async (i) => (await raw.exists(`raw:${live[order[i]]}`)) === 1), m, 'EXISTS hits');
      },
    },
  });
  const params = { sessions: n, lookupsPerRound: count };
  ctx.figure({
    id: 'replica.has-vs-in-memory',
    label: `await subject.hasSession(id) on Redis through the replica (instance B, ${sizeText(n)} live), vs InMemorySessionStorage in the same process`,
    unit: 'ops/s', better: 'higher', value: rates.replica,
    baseline: { label: 'await subject.hasSession(id), InMemorySessionStorage', samples: rates.memory },
    target: { ratio: 0.5 }, params,
  });
  ctx.figure({
    id: 'replica.has-vs-exists',
    label: 'await subject.hasSession(id) on Redis through the replica, vs raw EXISTS',
    unit: 'ops/s', better: 'higher', value: rates.replica,
    baseline: { label: `client.exists(key), ${IN_FLIGHT} in flight, no per-command timeout`, samples: rates.exists },
    target: { ratio: 10 }, params,
  });

  // Commands per lookup: the same lookups on B, and on a storage with localReads: false.
  const perLookup = async (subject: SessionSubject, m: number, pool = n): Promise<number> => {
    await raw.sendCommand(['CONFIG', 'RESETSTAT']);
    for (let i = 0; i < m; i++) await subject.hasSession(live[order[i] % pool]);
    return (await commandCalls(raw)) / m;
  };
  const m = Math.min(count, 100_000);
  const replicaCommands: number[] = [];
  const offCommands: number[] = [];
  for (let round = 0; round < ctx.options.rounds; round++) {
    replicaCommands.push(await perLookup(b.subject, m));
    offCommands.push(await perLookup(offSubject, Math.min(m, 20_000)));
  }
  ctx.figure({
    id: 'replica.commands-per-lookup',
    label: `Redis commands per hasSession of a live session on B (INFO commandstats), ${sizeText(m)} lookups`,
    unit: 'cmd/lookup', better: 'lower', value: replicaCommands,
    baseline: { label: 'the same lookups with localReads: false', samples: offCommands },
    target: { value: 0.01 }, params: { lookups: m },
  });

  // With idleTimeout 10 s (touch slack 1.25 s), sessions in steady use: the lookups go to 1000 of them
  // (each about m / 1000 times a round), and run for as long as they take, background touches included.
  const hot = Math.min(n, 1000);
  const idle = pair(url, 'replica-idle', logger, closables, { idleTimeout: 10_000 });
  const idleOff = new RedisSessionStorage({ url, keyPrefix: 'replica-idle', instanceId: 'off', localReads: false, idleTimeout: 10_000, logger });
  const idleOffSubject = new SessionSubject(idleOff, { logger });
  closables.push(idleOffSubject);
  await Promise.all([idle.a.subject.ready(), idle.b.subject.ready(), idleOffSubject.ready()]);
  expectEqual(await inFlight(n, IN_FLIGHT, (i) => idle.a.subject.createSession(live[i])), n, 'idle sessions created');
  await idle.b.storage.localReadsReady();
  // Measured while every session is live: the lookups below outlast idleTimeout, and sessions nobody uses expire.
  for (const until = Date.now() + 10_000; replicaOf(idle.b.storage).size < n && Date.now() < until; ) await new Promise((resolve) => setTimeout(resolve, 10));
  const idleBytes = replicaOf(idle.b.storage).byteSize() / replicaOf(idle.b.storage).size;
  const idleCommands: number[] = [];
  const idleOffCommands: number[] = [];
  for (let round = 0; round < ctx.options.rounds; round++) {
    idleCommands.push(await perLookup(idle.b.subject, m, hot));
    idleOffCommands.push(await perLookup(idleOffSubject, Math.min(m, 20_000), hot));
  }
  ctx.figure({
    id: 'replica.commands-per-lookup-idle',
    label: `the same with idleTimeout 10 s, ${sizeText(m)} lookups of ${hot} sessions in steady use (background touches included)`,
    unit: 'cmd/lookup', better: 'lower', value: idleCommands,
    baseline: { label: 'the same lookups with localReads: false (EVALSHA + its ZSCORE)', samples: idleOffCommands },
    target: { value: 0.01 }, params: { lookups: m, sessions: hot, idleTimeoutMs: 10_000 },
  });
  ctx.figure({
    id: 'replica.bytes-unscoped',
    label: `replica bytes per session (typed arrays), ${sizeText(n)} unscoped sessions`,
    unit: 'B/session', better: 'lower', value: [replicaOf(b.storage).byteSize() / replicaOf(b.storage).size],
    baseline: { label: 'the bare 8-byte id (BigInt64Array)', samples: [8] },
    target: { value: 16 }, params: { sessions: n },
  });
  ctx.figure({
    id: 'replica.bytes-idle',
    label: `the same with idleTimeout (a 4-byte deadline each)`,
    unit: 'B/session', better: 'lower', value: [idleBytes],
    baseline: { label: 'the bare 8-byte id (BigInt64Array)', samples: [8] },
    target: { value: 24 }, params: { sessions: n },
  });
}

async function staleness(ctx: SuiteContext, url: string, raw: Raw, logger: RecordingLogger, closables: { close(): Promise<unknown> }[]): Promise<void> {
  const count = ctx.pick({ quick: 200, default: 2000 });
  const { a, b } = pair(url, 'replica-stale', logger, closables);
  await Promise.all([a.subject.ready(), b.subject.ready(), b.storage.localReadsReady()]);
  const ids = randomIds(count, 41);
  const reader = raw.duplicate();
  reader.on('error', (error: unknown) => logger.error(`stale reader: ${String(error)}`));
  await reader.connect();
  closables.push(reader);
  const value: number[] = [];
  const baseline: number[] = [];
  for (let round = 0; round < ctx.options.rounds; round++) {
    const stale = new Float64Array(count);
    const rawLatency = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      const id = ids[i] + BigInt(round);
      await a.subject.createSession(id);
      // B holds it (a lookup that found it in the replica or Redis), then A destroys it.
      while (!(await b.subject.hasSession(id))) await new Promise((resolve) => setImmediate(resolve));
      await a.subject.destroySession(id);
      const resolved = performance.now();
      while (await b.subject.hasSession(id)) await new Promise((resolve) => setImmediate(resolve));
      stale[i] = performance.now() - resolved;
      // The raw pair: from the XADD call to the blocked XREAD's reply on another connection.
      const last = (await raw.xRevRange('raw-stale', '+', '-', { COUNT: 1 }))?.[0]?.id ?? '0-0';
      const reading = reader.xRead({ key: 'raw-stale', id: last }, { BLOCK: 1000, COUNT: 1 });
      await new Promise((resolve) => setImmediate(resolve));
      const added = performance.now();
      await raw.xAdd('raw-stale', '*', { t: 'd', s: `${id}` }, { TRIM: { strategy: 'MAXLEN', strategyModifier: '~', threshold: 1000 } });
      await reading;
      rawLatency[i] = performance.now() - added;
    }
    stale.sort();
    rawLatency.sort();
    value.push(percentile(stale, 0.5), percentile(stale, 0.99));
    baseline.push(percentile(rawLatency, 0.5), percentile(rawLatency, 0.99));
  }
  const pick = (samples: number[], which: number) => samples.filter((_, i) => i % 2 === which);
  for (const [which, p] of [[0, 'p50'], [1, 'p99']] as const) {
    ctx.figure({
      id: `replica.staleness-${p}`,
      label: `staleness ${p}: how long after A's destroySession resolved B still answers hasSession true`,
      unit: 'ms', better: 'lower', value: pick(value, which),
      baseline: { label: 'raw XADD call → the other connection\'s blocked XREAD reply', samples: pick(baseline, which) },
      params: { sessionsPerRound: count },
    });
  }
}

async function seeding(ctx: SuiteContext, url: string, raw: Raw, logger: RecordingLogger): Promise<void> {
  const n = ctx.pick({ quick: 20_000, default: 1_000_000 });
  const key = '{replica-seed}:sessions';
  ctx.progress(`writing ${sizeText(n)} members to ${key}`);
  const ids = randomIds(n, 51);
  for (let at = 0; at < n; at += 10_000) {
    const members = [];
    for (let i = at; i < Math.min(n, at + 10_000); i++) members.push({ score: Number.MAX_SAFE_INTEGER, value: `${ids[i]}` });
    await raw.zAdd(key, members);
  }
  const seconds: number[] = [];
  const rawSeconds: number[] = [];
  const blocks: number[] = [];
  const rawBlocks: number[] = [];
  for (let round = 0; round < Math.min(3, ctx.options.rounds); round++) {
    const delay = monitorEventLoopDelay({ resolution: 1 });
    // From a new storage to a seeded replica: connecting, the reader's start and the scan.
    const started = performance.now();
    const storage = new RedisSessionStorage({ url, keyPrefix: 'replica-seed', logger });
    const subject = new SessionSubject(storage, { logger });
    // Held from here: the scan starts once the reader knows the stream end (the constructors above are not the seed).
    delay.enable();
    await storage.localReadsReady().catch(async () => {
      // localReadsReady is bounded by commandTimeout; a large seed takes longer, so wait on.
      for (;;) {
        try {
          return await storage.localReadsReady();
        } catch {
          // Still seeding.
        }
      }
    });
    seconds.push((performance.now() - started) / 1000);
    delay.disable();
    blocks.push(delay.max / 1e6);
    expectEqual(replicaOf(storage).size, n, 'sessions seeded');
    await subject.close();

    const rawDelay = monitorEventLoopDelay({ resolution: 1 });
    rawDelay.enable();
    const rawStarted = performance.now();
    let cursor = '0';
    let seen = 0;
    do {
      const reply = await raw.zScan(key, cursor, { COUNT: 1000 });
      seen += reply.members?.length ?? 0;
      cursor = String(reply.cursor);
    } while (cursor !== '0');
    rawSeconds.push((performance.now() - rawStarted) / 1000);
    rawDelay.disable();
    rawBlocks.push(rawDelay.max / 1e6);
    if (seen < n) throw new Error(`raw ZSCAN saw ${seen} of ${n}`);
  }
  ctx.figure({
    id: 'replica.seed-seconds',
    label: `seeding the replica from ${sizeText(n)} sessions in Redis (ZSCAN batches of 1000 into the table)`,
    unit: 's', better: 'lower', value: seconds,
    baseline: { label: 'a bare ZSCAN of the same sorted set, COUNT 1000', samples: rawSeconds },
    params: { sessions: n },
  });
  ctx.figure({
    id: 'replica.seed-longest-block',
    label: 'the longest the event loop was held while seeding (monitorEventLoopDelay max)',
    unit: 'ms', better: 'lower', value: blocks,
    baseline: { label: 'the same during the bare ZSCAN', samples: rawBlocks },
    target: { value: 50 }, params: { sessions: n },
  });
  await raw.del(key);
}

async function redisBytes(ctx: SuiteContext, url: string, raw: Raw, logger: RecordingLogger, closables: { close(): Promise<unknown> }[]): Promise<void> {
  const liveCount = ctx.pick({ quick: 1000, default: 100_000 });
  const transitions = ctx.pick({ quick: 10_000, default: 1_000_000 });
  // Default options: a random UUID instance id included.
  const storage = new RedisSessionStorage({ url, keyPrefix: 'replica-bytes', logger });
  const a = { storage, subject: new SessionSubject(storage, { logger }) };
  closables.push(a.subject);
  await a.subject.ready();
  const live = randomIds(liveCount, 61);
  ctx.progress(`${sizeText(liveCount)} live sessions, then create/destroy cycles to ${sizeText(transitions)} transitions, default options`);
  expectEqual(await inFlight(liveCount, IN_FLIGHT, (i) => a.subject.createSession(live[i])), liveCount, 'live sessions');
  const cycles = (transitions - liveCount) >> 1;
  const churn = randomIds(cycles, 62);
  expectEqual(await inFlight(cycles, IN_FLIGHT, async (i) => (await a.subject.createSession(churn[i])) && a.subject.destroySession(churn[i])), cycles, 'cycles');
  const { sessions, events } = a.storage.redisKeys;
  const zset = await memoryUsage(raw, sessions);
  const stream = await memoryUsage(raw, events);
  // Baselines: the same members by a bare ZADD, and a stream of the earlier shape (a UUID origin, MAXLEN 10^6) over as many transitions.
  for (let at = 0; at < liveCount; at += 10_000) {
    await raw.zAdd('raw-bytes:sessions', Array.from(live.subarray(at, Math.min(liveCount, at + 10_000)), (id) => ({ score: Number.MAX_SAFE_INTEGER, value: `${id}` })));
  }
  const uuid = '0b3d6f8e-5a1c-4e2b-9f7d-1c2b3a4d5e6f';
  for (let at = 0; at < transitions; at += 1000) {
    const batch = raw.multi();
    for (let i = at; i < Math.min(transitions, at + 1000); i++) {
      batch.addCommand(['XADD', 'raw-bytes:events', 'MAXLEN', '~', '1000000', '*', 't', i % 2 === 0 ? 'c' : 'd', 's', `${churn[(i >> 1) % Math.max(1, cycles)] ?? live[0]}`, 'o', uuid, 'n', String(i + 1)]);
    }
    await batch.execAsPipeline();
  }
  const rawZset = await memoryUsage(raw, 'raw-bytes:sessions');
  const rawStream = await memoryUsage(raw, 'raw-bytes:events');
  const params = { liveSessions: liveCount, transitions };
  ctx.figure({
    id: 'replica.redis-bytes-sorted-set',
    label: `Redis bytes per live session, the sorted set (MEMORY USAGE), ${sizeText(liveCount)} live after ${sizeText(transitions)} transitions, default options`,
    unit: 'B/session', better: 'lower', value: [zset / liveCount],
    baseline: { label: 'the same members by a bare ZADD', samples: [rawZset / liveCount] }, params,
  });
  ctx.figure({
    id: 'replica.redis-bytes-stream',
    label: 'Redis bytes per live session, the event stream',
    unit: 'B/session', better: 'lower', value: [stream / liveCount],
    baseline: { label: 'the earlier stream: UUID origins, MAXLEN ~ 10^6', samples: [rawStream / liveCount] }, params,
  });
  ctx.figure({
    id: 'replica.redis-bytes-total',
    label: 'Redis bytes per live session, sorted set + stream',
    unit: 'B/session', better: 'lower', value: [(zset + stream) / liveCount],
    baseline: { label: 'bare ZADD + the earlier stream', samples: [(rawZset + rawStream) / liveCount] },
    target: { value: 200 }, params,
  });
}

// ---------------------------------------------------------------- cross-instance latency, two processes

/** Transitions per second in the latency runs. */
const EVENT_RATE = 10_000;
/** The wall clock both processes share, in ms with sub-ms resolution. */
const wallClock = (): number => performance.timeOrigin + performance.now();

/**
 * Instance B in a process of its own: a storage and subject on `keyPrefix`,
 * and a raw XREAD BLOCK reader of `rawKey` (what the storage's reader does,
 * bare). Records when each event reaches B's observer and each raw entry its
 * reader, until it has `count` of each, then reports them.
 */
const RECEIVER = defineTask('replica/latency-receiver', async (params) => {
  const { url, keyPrefix, rawKey, count } = params as { url: string; keyPrefix: string; rawKey: string; count: number };
  const logger = new RecordingLogger();
  const storage = new RedisSessionStorage({ url, keyPrefix, instanceId: 'b', logger });
  const subject = new SessionSubject(storage, { logger });
  const heard: [string, number][] = [];
  subject.subscribe({ update: (event) => void heard.push([`${event.type[0]}${event.sessionId}`, wallClock()]) });
  const reader = rawClient(url);
  reader.on('error', (error: unknown) => logger.error(`raw reader: ${String(error)}`));
  await reader.connect();
  const raw: [string, number][] = [];
  let position = (await reader.xRevRange(rawKey, '+', '-', { COUNT: 1 }))?.[0]?.id ?? '0-0';
  await subject.ready();
  const signal = rawClient(url);
  await signal.connect();
  await signal.set(`${rawKey}:ready`, '1');
  const deadline = Date.now() + 120_000;
  while ((raw.length < count || heard.length < count) && Date.now() < deadline) {
    const reply = await reader.xRead({ key: rawKey, id: position }, { BLOCK: 100, COUNT: 1000 });
    const now = wallClock();
    for (const stream of (reply ?? []) as { messages: { id: string; message: Record<string, string> }[] }[]) {
      for (const entry of stream.messages) {
        position = entry.id;
        raw.push([`${entry.message.t}${entry.message.s}`, now]);
      }
    }
  }
  await subject.close();
  await reader.close();
  await signal.close();
  logger.assertQuiet('the latency receiver');
  return { heard, raw } as unknown as Json;
});

/** Issues `count` transitions at EVENT_RATE/s (create, then destroy of the same id), paced by a 1 ms timer; records when each was called. */
async function pace(count: number, firstId: bigint, issue: (created: boolean, id: bigint) => Promise<unknown>, issued: Map<string, number>): Promise<void> {
  const pending: Promise<unknown>[] = [];
  let step = 0;
  const start = performance.now();
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const due = Math.min(count, Math.floor(((performance.now() - start) * EVENT_RATE) / 1000));
      while (step < due) {
        const id = firstId + BigInt(step >> 1);
        const created = (step & 1) === 0;
        issued.set(`${created ? 'c' : 'd'}${id}`, wallClock());
        pending.push(issue(created, id));
        step++;
      }
      if (step >= count) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
  await Promise.all(pending);
}

function latencies(issued: Map<string, number>, received: [string, number][], what: string): Float64Array {
  const values = new Float64Array(received.length);
  received.forEach(([key, at], i) => {
    const from = issued.get(key);
    if (from === undefined) throw new Error(`${what}: ${key} received but not issued`);
    values[i] = at - from;
  });
  if (received.length !== issued.size) throw new Error(`${what}: ${received.length} of ${issued.size} events received`);
  return values.sort();
}

async function processLatency(ctx: SuiteContext, url: string, raw: Raw, logger: RecordingLogger, closables: { close(): Promise<unknown> }[]): Promise<void> {
  const perRound = ctx.pick({ quick: 2000, default: 20_000 });
  const rounds = ctx.options.rounds;
  // Untimed rounds first, as ctx.rates does: the first burst meets cold code and young heaps in both
  // processes, and on a busy machine the backlog it builds lasts the whole round (p50 over a second).
  const warmup = ctx.options.warmup;
  const keyPrefix = 'replica-latency';
  const rawKey = 'raw-latency-processes';
  const storage = new RedisSessionStorage({ url, keyPrefix, instanceId: 'a', logger });
  const subject = new SessionSubject(storage, { logger });
  closables.push(subject);
  await subject.ready();
  // The scripts are in the server's cache before the runs (a first run falls back from NOSCRIPT).
  await subject.createSession(-1n);
  await subject.destroySession(-1n);
  ctx.progress(`cross-instance latency, B in another process: ${warmup} untimed and ${rounds} timed rounds of ${perRound} transitions at ${EVENT_RATE}/s, ours and the raw pair's`);
  const receiving = ctx.isolated<Json>(RECEIVER, { url, keyPrefix, rawKey, count: perRound * (warmup + rounds) });
  const readyBy = Date.now() + 30_000;
  while ((await raw.get(`${rawKey}:ready`)) === null) {
    if (Date.now() > readyBy) throw new Error('the latency receiver did not start within 30 s');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const ours: Map<string, number>[] = [];
  const bare: Map<string, number>[] = [];
  const trim = { TRIM: { strategy: 'MAXLEN', strategyModifier: '~', threshold: 100_000 } } as const;
  for (let round = -warmup; round < rounds; round++) {
    const first = BigInt(warmup + round) * 1_000_000n;
    const mine = new Map<string, number>();
    const theirs = new Map<string, number>();
    const runOurs = () => pace(perRound, first, (created, id) => (created ? subject.createSession(id) : subject.destroySession(id)), mine);
    const runRaw = () => pace(perRound, first, (created, id) => raw.xAdd(rawKey, '*', { t: created ? 'c' : 'd', s: `${id}` }, trim), theirs);
    if (round % 2 === 0) {
      await runOurs();
      await runRaw();
    } else {
      await runRaw();
      await runOurs();
    }
    if (round < 0) continue;
    ours.push(mine);
    bare.push(theirs);
  }
  const { heard, raw: rawHeard } = (await receiving) as unknown as { heard: [string, number][]; raw: [string, number][] };
  const value50: number[] = [];
  const value99: number[] = [];
  const base50: number[] = [];
  const base99: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const inRound = (entries: [string, number][]) => entries.filter(([key]) => BigInt(key.slice(1)) / 1_000_000n === BigInt(warmup + round));
    const mine = latencies(ours[round]!, inRound(heard), 'storage latency');
    const theirs = latencies(bare[round]!, inRound(rawHeard), 'raw latency');
    value50.push(percentile(mine, 0.5));
    value99.push(percentile(mine, 0.99));
    base50.push(percentile(theirs, 0.5));
    base99.push(percentile(theirs, 0.99));
  }
  const params = { eventsPerSecond: EVENT_RATE, transitionsPerRound: perRound };
  const baselineLabel = 'XADD → XREAD BLOCK, B\'s process, no per-command timeout';
  ctx.figure({
    id: 'replica.latency-processes-p50',
    label: `event latency p50, A's call → B's observer, B in another process, at ${EVENT_RATE.toLocaleString('en-US')} events/s, vs the raw pair`,
    unit: 'ms', better: 'lower', value: value50, baseline: { label: baselineLabel, samples: base50 }, params,
  });
  ctx.figure({
    id: 'replica.latency-processes-p99',
    label: 'event latency p99, the same',
    unit: 'ms', better: 'lower', value: value99, baseline: { label: baselineLabel, samples: base99 },
    // Within 1.5x of the raw pair's p99.
    target: { ratio: 1 / 1.5 }, params,
  });
}
