/**
 * RedisSessionStorage against the bare node-redis client, on one redis-server
 * that the suite starts itself on a free loopback port (never a Redis already
 * running on the machine):
 *
 * - hasSession through a SessionSubject (reader running) with 1000 calls in
 *   flight, against EXISTS on plain keys;
 * - createSession + destroySession through the subject, each event recorded in
 *   the stream and announced before the call resolves, against SET NX + DEL
 *   and against the script floor (one EVALSHA per transition: ZADD or ZREM
 *   plus XADD MAXLEN ~), with what each transition costs beside its rate:
 *   Node CPU, redis-server CPU and the commands Redis ran;
 * - the latency of an event from the instance that makes a transition to the
 *   observer of another instance, at a steady 10^4 events/s, against a bare
 *   XADD read by XREAD BLOCK on a second connection (what the storage does).
 *
 * Everything goes through the package's public entry point.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createClient } from 'redis';
import { SessionSubject, type SessionEvent, type SessionObserver } from '../../src/index.js';
import { RedisSessionStorage } from '../../src/storages/redis/index.js';
import { collectGarbage, stats, type RateVariant, type Suite, type SuiteContext } from '../harness.js';
import { IdStream, lookupIds } from '../ids.js';
import { expectEqual, RecordingLogger, sizeText } from '../support.js';

/** Calls kept outstanding in the throughput figures. */
const IN_FLIGHT = 1000;
/** The steady rate of the latency figures, transitions (events) per second. */
const EVENT_RATE = 10_000;
/** Below this delivered rate the latency run did not really run at {@link EVENT_RATE}. */
const RATE_FLOOR = 0.99 * EVENT_RATE;
/** Pacing timer period: a batch of about EVENT_RATE / 1000 transitions per tick. */
const PACE_MS = 1;
/** How long the end of a run may wait for its last calls and events before it fails. */
const SETTLE_TIMEOUT_MS = 15_000;
const STREAM_MAX_LENGTH = 1_000_000;

// ---------------------------------------------------------------- redis-server

const HOST = '127.0.0.1';
const READY_LINE = 'Ready to accept connections';
const START_ATTEMPTS = 5;
const READY_TIMEOUT_MS = 10_000;

export interface BenchRedisServer {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

export function redisServerAvailable(): boolean {
  const probe = spawnSync('redis-server', ['--version'], { stdio: 'ignore' });
  return probe.error === undefined && probe.status === 0;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error(`unexpected server address ${String(address)}`);
  return address.port;
}

/**
 * Starts `redis-server` on a free 127.0.0.1 port, without persistence, in a
 * fresh directory, and resolves once it logs that it accepts connections. A
 * port taken between the probe and the bind is retried on another one. The
 * server is killed when this process exits, whatever happens to the suite.
 */
export async function startRedisServer(extraArgs: () => Promise<string[]> = async () => []): Promise<BenchRedisServer> {
  let lastOutput = '';
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const port = await freePort();
    const directory = mkdtempSync(join(tmpdir(), 'bench-redis-'));
    const child = spawn('redis-server', ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', directory, ...(await extraArgs())], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const killOnExit = () => child.kill('SIGKILL');
    process.once('exit', killOnExit);
    const exited = new Promise<void>((resolve) => {
      child.once('error', () => resolve());
      child.once('exit', () => resolve());
    });
    const cleanUp = () => {
      process.removeListener('exit', killOnExit);
      rmSync(directory, { recursive: true, force: true });
    };
    let output = '';
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), READY_TIMEOUT_MS);
      // Drain both pipes for the server's whole life: a full pipe would block it.
      const capture = (chunk: Buffer) => {
        output = (output + chunk.toString('utf8')).slice(-16_384);
        if (output.includes(READY_LINE)) {
          clearTimeout(timer);
          resolve(true);
        }
      };
      child.stdout!.on('data', capture);
      child.stderr!.on('data', capture);
      void exited.then(() => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (ready) {
      return {
        url: `redis://${HOST}:${port}`,
        port,
        async stop() {
          child.kill('SIGTERM');
          const escalate = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(escalate);
          cleanUp();
        },
      };
    }
    child.kill('SIGKILL');
    await exited;
    cleanUp();
    lastOutput = output;
    if (!output.includes('Address already in use')) break;
  }
  throw new Error(`redis-server did not start:\n${lastOutput}`);
}

// ---------------------------------------------------------------- helpers

/**
 * Calls `body(0)` ... `body(count - 1)` keeping `window` calls in flight at
 * every moment (a sliding window: each finished call starts the next), and
 * resolves with how many resolved `true`.
 */
export async function inFlight(count: number, window: number, body: (index: number) => Promise<boolean>): Promise<number> {
  let next = 0;
  let trues = 0;
  const lane = async () => {
    while (next < count) if (await body(next++)) trues++;
  };
  await Promise.all(Array.from({ length: Math.min(window, count) }, lane));
  return trues;
}

/** Resolves once `done()` holds, polling; rejects with `what()` after {@link SETTLE_TIMEOUT_MS}. */
async function settle(done: () => boolean, what: () => string): Promise<void> {
  const deadline = performance.now() + SETTLE_TIMEOUT_MS;
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`not settled after ${SETTLE_TIMEOUT_MS} ms: ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

export function randomIds(count: number, seed: number): BigInt64Array {
  const random = new IdStream(seed);
  const ids = new BigInt64Array(count);
  for (let i = 0; i < count; i++) ids[i] = random.next();
  return ids;
}

/** XREAD's reply as node-redis 6 gives it (`[{ name, messages: [{ id, message }] }]`, RESP2 or RESP3) as entries. */
export function streamEntries(reply: unknown): { id: string; message: Record<string, string> }[] {
  if (reply === null || reply === undefined) return [];
  const entries: { id: string; message: Record<string, string> }[] = [];
  for (const stream of reply as { messages: { id: string; message: Record<string, string> }[] }[]) entries.push(...stream.messages);
  return entries;
}

// ---------------------------------------------------------------- latency

/** What one latency run measured. */
export interface LatencyRun {
  p50: number;
  p99: number;
  /** Events delivered per second, from the first issued call to the last delivery. */
  rate: number;
}

/**
 * The instance that makes transitions, seen from the pacing loop: `issue`
 * starts the transition (create on even steps, destroy of the same id on the
 * odd step after it) and reports its completion with `completed(ok)`.
 */
export interface LatencyWriter {
  issue(created: boolean, id: bigint, completed: (ok: boolean) => void): void;
}

/**
 * Where the other instance hands each event: the receiving side calls
 * `receiver.receive(created, id)` at the moment its observer gets the event.
 */
/**
 * A latency run's writer through a subject: creates and destroys, each
 * resolving true, or the run fails; one that does not is named on stderr
 * with its reason, so that a failed run says why.
 */
export function subjectLatencyWriter(subject: SessionSubject, run: string): LatencyWriter {
  return {
    issue(created, id, completed) {
      const call = created ? 'createSession' : 'destroySession';
      (created ? subject.createSession(id) : subject.destroySession(id)).then(
        (changed) => {
          if (!changed) process.stderr.write(`${run}: ${call}(${id}) resolved false\n`);
          completed(changed);
        },
        (error: unknown) => {
          process.stderr.write(`${run}: ${call}(${id}) failed: ${String(error)}\n`);
          completed(false);
        },
      );
    },
  };
}

export interface LatencyReceiver {
  receive(created: boolean, id: bigint): void;
}

/**
 * Makes `transitions` transitions at {@link EVENT_RATE}/s through `writer`,
 * paced by a timer that every {@link PACE_MS} ms issues what is due by then
 * (never a busy loop), and measures for each event the time from its call to
 * its delivery at the other instance. Fails unless every call succeeded and
 * every event arrived exactly once.
 */
export async function paceAndMeasure(
  transitions: number,
  seed: number,
  writer: LatencyWriter,
  attach: (receiver: LatencyReceiver | undefined) => void,
  what: string,
): Promise<LatencyRun> {
  const pairs = transitions >> 1;
  const total = pairs * 2;
  const ids = randomIds(pairs, seed);
  const createdAt = new Map<bigint, number>();
  const destroyedAt = new Map<bigint, number>();
  const latencies = new Float64Array(total);
  let received = 0;
  let unexpected = 0;
  let lastReceived = 0;
  let completed = 0;
  let failed = 0;
  const complete = (ok: boolean) => {
    completed++;
    if (!ok) failed++;
  };
  attach({
    receive(created, id) {
      const now = performance.now();
      const issued = created ? createdAt : destroyedAt;
      const at = issued.get(id);
      if (at === undefined) {
        unexpected++;
        return;
      }
      issued.delete(id);
      if (received < total) latencies[received] = now - at;
      received++;
      lastReceived = now;
    },
  });
  try {
    let issuedCount = 0;
    const start = performance.now();
    await new Promise<void>((resolve) => {
      const tick = () => {
        const due = Math.min(total, Math.floor(((performance.now() - start) * EVENT_RATE) / 1000));
        while (issuedCount < due) {
          const step = issuedCount++;
          const id = ids[step >> 1];
          const created = (step & 1) === 0;
          (created ? createdAt : destroyedAt).set(id, performance.now());
          writer.issue(created, id, complete);
        }
        if (issuedCount >= total) {
          clearInterval(timer);
          resolve();
        }
      };
      const timer = setInterval(tick, PACE_MS);
    });
    await settle(
      () => (completed === total && received >= total) || failed > 0 || unexpected > 0,
      () => `${what}: ${completed}/${total} calls completed, ${received}/${total} events received`,
    );
    expectEqual(failed, 0, `${what}: calls that did not resolve true`);
    expectEqual(unexpected, 0, `${what}: events received that were not issued, or twice`);
    expectEqual(received, total, `${what}: events received`);
    expectEqual(createdAt.size + destroyedAt.size, 0, `${what}: events never received`);
    latencies.sort();
    return { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), rate: total / ((lastReceived - start) / 1000) };
  } finally {
    attach(undefined);
  }
}

/** Runs each latency variant `warmup` times with `warmupTransitions`, then `rounds` times interleaved, the order reversed every other round. */
export async function latencyRounds<K extends string>(
  ctx: SuiteContext,
  variants: Record<K, (transitions: number, seed: number) => Promise<LatencyRun>>,
  transitions: number,
  warmupTransitions: number,
): Promise<Record<K, LatencyRun[]>> {
  const names = Object.keys(variants) as K[];
  const runs = Object.fromEntries(names.map((name) => [name, [] as LatencyRun[]])) as Record<K, LatencyRun[]>;
  let seed = 1000;
  await collectGarbage();
  for (let round = 0; round < ctx.options.warmup; round++) {
    for (const name of names) await variants[name](warmupTransitions, seed++);
  }
  for (let round = 0; round < ctx.options.rounds; round++) {
    for (const name of round % 2 === 0 ? names : [...names].reverse()) {
      const run = await variants[name](transitions, seed++);
      ctx.progress(`  ${name}: p50 ${run.p50.toFixed(3)} ms, p99 ${run.p99.toFixed(3)} ms at ${Math.round(run.rate)} events/s`);
      runs[name].push(run);
    }
  }
  return runs;
}

// ---------------------------------------------------------------- raw baselines

/**
 * A node-redis client as the baselines use it: as createClient gives it (node-redis 6 bounds each
 * command with a 5 s AbortSignal.timeout), or `untimed`, without that per-command timeout.
 */
function rawClient(url: string, untimed: boolean) {
  return createClient({ url, commandOptions: untimed ? { timeout: 0 } : {} });
}

type RawClient = ReturnType<typeof rawClient>;

/** Connects a raw client, reporting its errors to `logger` (which fails the suite) and closing it at the end. */
async function connectRaw<C extends { on(event: 'error', listener: (error: unknown) => void): unknown; connect(): Promise<unknown>; close(): Promise<unknown> }>(
  client: C,
  what: string,
  logger: RecordingLogger,
  closables: { close(): Promise<unknown> }[],
): Promise<C> {
  client.on('error', (error: unknown) => logger.error(`${what}: ${String(error)}`));
  await client.connect();
  closables.push(client);
  return client;
}

/**
 * The latency baseline: XADD on `client`, and XREAD BLOCK from the last entry
 * read on a second connection (its duplicate), which is what the storage does
 * without the sorted set, the script and the subject.
 */
async function openRawStream(client: RawClient, key: string, logger: RecordingLogger, closables: { close(): Promise<unknown> }[]) {
  const reader = await connectRaw(client.duplicate(), `${key} reader`, logger, closables);
  let receiver: LatencyReceiver | undefined;
  let reading = true;
  const loop = (async () => {
    let position = '0-0';
    while (reading) {
      const entries = streamEntries(await reader.xRead({ key, id: position }, { BLOCK: 100, COUNT: 1000 }));
      for (const entry of entries) {
        position = entry.id;
        receiver?.receive(entry.message.t === 'c', BigInt(entry.message.s));
      }
    }
  })();
  // A failure while reading is reported (and fails the suite); once stopped it is moot.
  loop.catch((error: unknown) => {
    if (reading) logger.error(`${key} reader loop: ${String(error)}`);
  });
  const trim = { TRIM: { strategy: 'MAXLEN', strategyModifier: '~', threshold: STREAM_MAX_LENGTH } } as const;
  const writer: LatencyWriter = {
    issue(created, id, completed) {
      client.xAdd(key, '*', { t: created ? 'c' : 'd', s: `${id}`, o: 'raw' }, trim).then(
        (entryId) => completed(typeof entryId === 'string'),
        () => completed(false),
      );
    },
  };
  return {
    writer,
    attach: (next: LatencyReceiver | undefined) => {
      receiver = next;
    },
    async stop() {
      reading = false;
      await loop;
    },
  };
}

// ---------------------------------------------------------------- the script floor and transition costs

/** What the storage's stream is trimmed to by default (`MAXLEN ~`); the floor trims its own stream the same way. */
export const FLOOR_STREAM_MAX_LENGTH = 100_000;
/** The score the floor gives its members: the storage's "no idle deadline" score. */
export const FLOOR_SCORE = String(Number.MAX_SAFE_INTEGER);

/**
 * The script floor: the least a transition recorded in Redis takes, one
 * script per transition that changes the sorted set and appends the event.
 * KEYS = [sorted set, stream], ARGV = [mode ('c' create, 'd' destroy), member,
 * score]. Replies the ZADD / ZREM count (1 when it changed the set).
 */
export const FLOOR_SCRIPT = `
local changed
if ARGV[1] == 'c' then
  changed = redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
else
  changed = redis.call('ZREM', KEYS[1], ARGV[2])
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', '${FLOOR_STREAM_MAX_LENGTH}', '*', 't', ARGV[1], 's', ARGV[2])
return changed
`;

/** Counters of the whole redis-server, read with INFO. */
interface RedisCounters {
  /** used_cpu_sys + used_cpu_user, seconds. */
  cpuSeconds: number;
  /** Calls of every command but EVAL / EVALSHA (whose inner commands are counted), SCRIPT, INFO, CONFIG and XREAD. */
  commands: number;
  /** Calls of XREAD (a storage's reader). */
  xreads: number;
}

/** Commands not counted as a transition's: the scripts themselves (their inner commands count), the bench's own probes, the reader. */
const UNCOUNTED_COMMAND = /^(eval|evalsha|eval_ro|evalsha_ro|script|info|config)(\|.*)?$/;

async function redisCounters(probe: RawClient): Promise<RedisCounters> {
  const commandStats = String(await probe.sendCommand(['INFO', 'commandstats']));
  const cpu = String(await probe.sendCommand(['INFO', 'cpu']));
  const field = (name: string) => {
    const match = new RegExp(`^${name}:([0-9.]+)`, 'm').exec(cpu);
    if (match === null) throw new Error(`INFO cpu has no ${name}`);
    return Number(match[1]);
  };
  let commands = 0;
  let xreads = 0;
  for (const match of commandStats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    const name = match[1]!;
    if (name === 'xread') xreads += Number(match[2]);
    else if (!UNCOUNTED_COMMAND.test(name)) commands += Number(match[2]);
  }
  return { cpuSeconds: field('used_cpu_sys') + field('used_cpu_user'), commands, xreads };
}

/** Per timed round of a variant, per transition: this process's CPU (µs), redis-server's CPU (µs), commands and XREADs. */
interface TransitionCosts {
  nodeCpu: number[];
  redisCpu: number[];
  commands: number[];
  xreads: number[];
}

/**
 * `variant` with `beforeRound` / `afterRound` that read this process's CPU
 * time (`process.cpuUsage()`, every thread) and redis-server's counters
 * (INFO, on `probe`, a connection of its own) around each timed round, the
 * CPU readings innermost, and record their deltas divided by `transitions`.
 */
function metered(variant: RateVariant, transitions: number, probe: RawClient): { variant: RateVariant; costs: TransitionCosts } {
  const costs: TransitionCosts = { nodeCpu: [], redisCpu: [], commands: [], xreads: [] };
  let redisBefore: RedisCounters | undefined;
  let cpuBefore: NodeJS.CpuUsage | undefined;
  return {
    costs,
    variant: {
      ops: variant.ops,
      run: () => variant.run(),
      async beforeRound() {
        redisBefore = await redisCounters(probe);
        cpuBefore = process.cpuUsage();
      },
      async afterRound() {
        const cpu = process.cpuUsage(cpuBefore);
        const redisAfter = await redisCounters(probe);
        costs.nodeCpu.push((cpu.user + cpu.system) / transitions);
        costs.redisCpu.push(((redisAfter.cpuSeconds - redisBefore!.cpuSeconds) * 1e6) / transitions);
        costs.commands.push((redisAfter.commands - redisBefore!.commands) / transitions);
        costs.xreads.push((redisAfter.xreads - redisBefore!.xreads) / transitions);
      },
    },
  };
}

// ---------------------------------------------------------------- the suite

export const redisSuite: Suite = {
  name: 'redis',
  description:
    'RedisSessionStorage on a redis-server of its own: hasSession vs EXISTS, create+destroy vs SET NX+DEL and vs the script floor (with Node CPU, Redis CPU and commands per transition), cross-instance event latency vs XADD→XREAD',
  async run(ctx) {
    const n = ctx.pick({ quick: 10_000, default: 100_000 });
    const lookups = ctx.pick({ quick: 10_000, default: 200_000 });
    const cycles = ctx.pick({ quick: 2_000, default: 20_000 });
    const latencySeconds = ctx.pick({ quick: 0.3, default: 3 });
    const transitions = Math.round(EVENT_RATE * latencySeconds);
    const rate = EVENT_RATE.toLocaleString('en-US');
    const hasLabel = `subject.hasSession, ${sizeText(n)} sessions, ${IN_FLIGHT} in flight, vs EXISTS`;
    const cycleLabel = `subject.createSession + destroySession (event recorded and announced), ${IN_FLIGHT} ids in flight, vs SET NX + DEL`;
    const floorLabel = `subject.createSession + destroySession (event recorded and announced), ${IN_FLIGHT} ids in flight, vs the script floor`;
    const nodeCpuLabel = `Node CPU per transition (process.cpuUsage, user + system, every thread), subject create + destroy vs the script floor`;
    const redisCpuLabel = `redis-server CPU per transition (INFO cpu, used_cpu_user + used_cpu_sys, the subject's reader included), subject vs the script floor`;
    const commandsLabel = `Redis commands per transition (INFO commandstats: those scripts ran and any other, not EVALSHA/EVAL/SCRIPT/INFO nor the reader's XREAD), subject vs the script floor`;
    const latencyLabel = (p: string) => `event latency ${p}, A's call → B's observer, at ${rate} events/s, vs XADD → XREAD`;
    const rateLabel = `events/s B received in the latency runs (paced at ${rate}/s)`;
    const untimedNote = 'context: the baseline client without its per-command timeout';

    if (!redisServerAvailable()) {
      const unavailable = 'redis-server not on PATH';
      for (const [id, label, unit, better] of [
        ['redis.has-vs-exists', hasLabel, 'ops/s', 'higher'],
        ['redis.has-vs-exists-untimed', hasLabel, 'ops/s', 'higher'],
        ['redis.cycle-vs-set-del', cycleLabel, 'cycles/s', 'higher'],
        ['redis.cycle-vs-set-del-untimed', cycleLabel, 'cycles/s', 'higher'],
        ['redis.cycle-vs-script-floor', floorLabel, 'cycles/s', 'higher'],
        ['redis.node-cpu-per-transition', nodeCpuLabel, 'µs', 'lower'],
        ['redis.redis-cpu-per-transition', redisCpuLabel, 'µs', 'lower'],
        ['redis.commands-per-transition', commandsLabel, 'cmd/transition', 'lower'],
        ['redis.latency-p50', latencyLabel('p50'), 'ms', 'lower'],
        ['redis.latency-p99', latencyLabel('p99'), 'ms', 'lower'],
        ['redis.latency-p99-untimed', latencyLabel('p99'), 'ms', 'lower'],
        ['redis.latency-rate', rateLabel, 'events/s', 'higher'],
      ] as const) {
        ctx.figure({ id, label, unit, better, value: null, baseline: null, unavailable });
      }
      return;
    }

    const server = await startRedisServer();
    ctx.progress(`redis-server at ${server.url}`);
    const logger = new RecordingLogger();
    const closables: { close(): Promise<unknown> }[] = [];
    try {
      const storage = new RedisSessionStorage({ url: server.url, keyPrefix: 'bench', logger });
      const subject = new SessionSubject(storage, { logger });
      closables.push(subject);
      // The baselines' client as createClient gives it (node-redis 6: a 5 s timeout per command, an
      // AbortSignal.timeout each), and, for context, one without that timeout, as the storage bounds
      // its calls with a timer of its own.
      const raw = await connectRaw(rawClient(server.url, false), 'raw client', logger, closables);
      const untimed = await connectRaw(rawClient(server.url, true), 'untimed raw client', logger, closables);
      // Reads redis-server's INFO around the timed rounds, on a connection no variant uses.
      const probe = await connectRaw(rawClient(server.url, true), 'INFO probe', logger, closables);
      const rawKey = (id: bigint) => `raw:${id}`;

      // ------------------------------------------------------------ hasSession vs EXISTS
      ctx.progress(`creating ${sizeText(n)} sessions through the subject and ${sizeText(n)} raw keys, ${IN_FLIGHT} in flight`);
      const live = randomIds(n, 21);
      let filled = await inFlight(n, IN_FLIGHT, (i) => subject.createSession(live[i]));
      expectEqual(filled, n, 'sessions created');
      filled = await inFlight(n, IN_FLIGHT, async (i) => (await raw.set(rawKey(live[i]), '1')) === 'OK');
      expectEqual(filled, n, 'raw keys set');
      expectEqual(await storage.count(), n, 'storage.count()');

      const ids = lookupIds(live, n, lookups, 22);
      const expectedHits = lookups / 2;
      /** EXISTS on the raw keys; the key text is built in the loop, as the storage builds its member. */
      const existing = (client: RawClient, what: string) => ({
        ops: lookups,
        async run() {
          expectEqual(await inFlight(lookups, IN_FLIGHT, async (i) => (await client.exists(rawKey(ids[i]))) === 1), expectedHits, `${what} EXISTS hits`);
        },
      });
      ctx.progress(`${lookups} lookups per round, half present, half absent, ${IN_FLIGHT} in flight`);
      const has = await ctx.rates({
        subject: {
          ops: lookups,
          async run() {
            expectEqual(await inFlight(lookups, IN_FLIGHT, (i) => subject.hasSession(ids[i])), expectedHits, 'subject.hasSession hits');
          },
        },
        exists: existing(raw, 'raw'),
        untimed: existing(untimed, 'untimed raw'),
      });

      // ------------------------------------------------------------ create + destroy vs SET NX + DEL
      let calls = 0;
      const counting: SessionObserver = {
        update() {
          calls++;
        },
      };
      subject.subscribe(counting);
      const fresh = randomIds(cycles, 23);
      const setAndDelete = (client: RawClient, what: string) => ({
        ops: cycles,
        async run() {
          const done = await inFlight(cycles, IN_FLIGHT, async (i) => {
            const key = rawKey(fresh[i]);
            return (await client.set(key, '1', { condition: 'NX' })) === 'OK' && (await client.del(key)) === 1;
          });
          expectEqual(done, cycles, `${what} keys set and deleted`);
        },
      });
      // The script floor: one EVALSHA per transition on the client without the per-command timeout
      // (the storage bounds its calls with a timer of its own, so that is the client it is held to).
      const floorSha = await untimed.scriptLoad(FLOOR_SCRIPT);
      const floorTransition = async (keys: string[], mode: 'c' | 'd', id: bigint) =>
        (await untimed.evalSha(floorSha, { keys, arguments: [mode, `${id}`, FLOOR_SCORE] })) === 1;
      // The floor's sorted set holds only the ids in flight; the subject's holds the 10^5 live sessions too, and a
      // ZADD or ZREM among 10^5 random members misses the cache where one among 1000 does not. For context, the
      // floor again on a set seeded with the same live members: what the set's size costs, apart from ours.
      const floorKeys = ['floor:sessions', 'floor:events'];
      const fullFloorKeys = ['floor:full:sessions', 'floor:full:events'];
      for (let from = 0; from < n; from += 1000) {
        await untimed.zAdd(fullFloorKeys[0]!, Array.from(live.subarray(from, Math.min(n, from + 1000)), (id) => ({ score: Number(FLOOR_SCORE), value: `${id}` })));
      }
      expectEqual(await untimed.zCard(fullFloorKeys[0]!), n, 'members seeded in the full floor\'s set');
      const cycleTransitions = 2 * cycles;
      const subjectCycles = metered(
        {
          ops: cycles,
          async run() {
            calls = 0;
            const done = await inFlight(cycles, IN_FLIGHT, async (i) => (await subject.createSession(fresh[i])) && subject.destroySession(fresh[i]));
            expectEqual(done, cycles, 'sessions created and destroyed');
            // Each call resolves once this instance's observers have the event.
            expectEqual(calls, cycleTransitions, 'observer calls');
          },
        },
        cycleTransitions,
        probe,
      );
      const floorRounds = (keys: string[], what: string) => metered(
        {
          ops: cycles,
          async run() {
            const done = await inFlight(cycles, IN_FLIGHT, async (i) => (await floorTransition(keys, 'c', fresh[i])) && floorTransition(keys, 'd', fresh[i]));
            expectEqual(done, cycles, `${what} members added and removed`);
          },
        },
        cycleTransitions,
        probe,
      );
      const floorCycles = floorRounds(floorKeys, 'script floor');
      const fullFloorCycles = floorRounds(fullFloorKeys, 'full script floor');
      ctx.progress(`${cycles} create + destroy cycles per round, ${IN_FLIGHT} ids in flight`);
      const cycle = await ctx.rates({
        subject: subjectCycles.variant,
        setDel: setAndDelete(raw, 'raw'),
        untimed: setAndDelete(untimed, 'untimed raw'),
        floor: floorCycles.variant,
        fullFloor: fullFloorCycles.variant,
      });
      const subjectCosts = subjectCycles.costs;
      const floorCosts = floorCycles.costs;
      const fullFloorCosts = fullFloorCycles.costs;
      const median = (samples: number[]) => stats(samples).median;
      ctx.progress(
        `  per transition, subject / floor: Node CPU ${median(subjectCosts.nodeCpu).toFixed(1)} / ${median(floorCosts.nodeCpu).toFixed(1)} µs, ` +
          `Redis CPU ${median(subjectCosts.redisCpu).toFixed(1)} / ${median(floorCosts.redisCpu).toFixed(1)} µs, ` +
          `commands ${median(subjectCosts.commands).toFixed(2)} / ${median(floorCosts.commands).toFixed(2)}, XREAD ${median(subjectCosts.xreads).toFixed(3)} / ${median(floorCosts.xreads).toFixed(3)}; `
          + `the floor on a set of ${sizeText(n)} members: Redis CPU ${median(fullFloorCosts.redisCpu).toFixed(1)} µs`,
      );
      subject.unsubscribe(counting);

      // ------------------------------------------------------------ cross-instance latency
      // Instance A makes the transitions; instance B, another storage on the same
      // keyPrefix with its own subject, hears them through its own reader.
      const storageA = new RedisSessionStorage({ url: server.url, keyPrefix: 'bench-latency', logger });
      const subjectA = new SessionSubject(storageA, { logger });
      closables.push(subjectA);
      const storageB = new RedisSessionStorage({ url: server.url, keyPrefix: 'bench-latency', logger });
      const subjectB = new SessionSubject(storageB, { logger });
      closables.push(subjectB);
      let receiverB: LatencyReceiver | undefined;
      subjectB.subscribe({
        update(event: SessionEvent) {
          receiverB?.receive(event.type === 'created', event.sessionId);
        },
      });
      // Both readers know where the stream ends before A writes anything.
      await Promise.all([storageA.ping(), storageB.ping()]);
      // The pacer issues a session's create and destroy back to back, not awaiting the first, and a
      // run fails if they are applied out of order. Both scripts are in this server's script cache by
      // now (the figures above ran them): a script's first run on a server falls back from NOSCRIPT to
      // EVAL, and a call issued after it can overtake it.
      const storageWriter = subjectLatencyWriter(subjectA, 'storage latency run');
      const rawStream = await openRawStream(raw, 'raw-latency:events', logger, closables);
      const untimedStream = await openRawStream(untimed, 'untimed-latency:events', logger, closables);

      ctx.progress(`${transitions} transitions per round at ${EVENT_RATE} per second, paced every ${PACE_MS} ms`);
      const latency = await latencyRounds(
        ctx,
        {
          subject: (count, seed) => paceAndMeasure(count, seed, storageWriter, (receiver) => (receiverB = receiver), 'storage latency run'),
          xread: (count, seed) => paceAndMeasure(count, seed, rawStream.writer, rawStream.attach, 'raw latency run'),
          untimed: (count, seed) => paceAndMeasure(count, seed, untimedStream.writer, untimedStream.attach, 'untimed raw latency run'),
        },
        transitions,
        Math.round(transitions / 3),
      );
      await rawStream.stop();
      await untimedStream.stop();
      logger.assertQuiet('the redis suite');

      ctx.figure({
        id: 'redis.has-vs-exists',
        label: hasLabel,
        unit: 'ops/s',
        better: 'higher',
        value: has.subject,
        baseline: { label: 'client.exists(key), createClient defaults', samples: has.exists },
        target: { ratio: 0.9 },
        params: { sessions: n, lookupsPerRound: lookups, inFlight: IN_FLIGHT },
      });
      ctx.figure({
        id: 'redis.has-vs-exists-untimed',
        label: hasLabel,
        unit: 'ops/s',
        better: 'higher',
        value: has.subject,
        baseline: { label: 'client.exists(key), commandOptions { timeout: 0 }', samples: has.untimed },
        note: untimedNote,
        params: { sessions: n, lookupsPerRound: lookups, inFlight: IN_FLIGHT },
      });
      ctx.figure({
        id: 'redis.cycle-vs-set-del',
        label: cycleLabel,
        unit: 'cycles/s',
        better: 'higher',
        value: cycle.subject,
        baseline: { label: 'SET key 1 NX + DEL key, createClient defaults', samples: cycle.setDel },
        target: { ratio: 0.5 },
        params: { cyclesPerRound: cycles, inFlight: IN_FLIGHT, observers: 1 },
      });
      ctx.figure({
        id: 'redis.cycle-vs-set-del-untimed',
        label: cycleLabel,
        unit: 'cycles/s',
        better: 'higher',
        value: cycle.subject,
        baseline: { label: 'SET key 1 NX + DEL key, commandOptions { timeout: 0 }', samples: cycle.untimed },
        note: untimedNote,
        params: { cyclesPerRound: cycles, inFlight: IN_FLIGHT, observers: 1 },
      });
      const floorBaseline = 'EVALSHA per transition: ZADD / ZREM + XADD MAXLEN ~ 100000, no per-command timeout';
      const floorParams = { cyclesPerRound: cycles, transitionsPerRound: cycleTransitions, inFlight: IN_FLIGHT, observers: 1, streamMaxLength: FLOOR_STREAM_MAX_LENGTH };
      ctx.figure({
        id: 'redis.cycle-vs-script-floor',
        label: floorLabel,
        unit: 'cycles/s',
        better: 'higher',
        value: cycle.subject,
        baseline: { label: floorBaseline, samples: cycle.floor },
        target: { ratio: 0.6 },
        params: floorParams,
      });
      ctx.figure({
        id: 'redis.node-cpu-per-transition',
        label: nodeCpuLabel,
        unit: 'µs',
        better: 'lower',
        value: subjectCosts.nodeCpu,
        baseline: { label: 'the script floor, the same rounds', samples: floorCosts.nodeCpu },
        // At most 2.5 times the floor's: the ratio (floor / subject) at least 0.4.
        target: { ratio: 1 / 2.5 },
        note: 'target: ≤ 2.5× the floor',
        params: floorParams,
      });
      ctx.figure({
        id: 'redis.redis-cpu-per-transition',
        label: redisCpuLabel,
        unit: 'µs',
        better: 'lower',
        value: subjectCosts.redisCpu,
        baseline: { label: 'the script floor, the same rounds', samples: floorCosts.redisCpu },
        // At most 1.6 times the floor's: the ratio (floor / subject) at least 0.625.
        target: { ratio: 1 / 1.6 },
        note: 'target: ≤ 1.6× the floor',
        params: floorParams,
      });
      const fullFloorNote = `context: the floor on a sorted set seeded with the same ${sizeText(n)} live members as the subject's (the plain floor's holds only the ids in flight)`;
      ctx.figure({
        id: 'redis.cycle-vs-full-script-floor',
        label: floorLabel,
        unit: 'cycles/s',
        better: 'higher',
        value: cycle.subject,
        baseline: { label: `${floorBaseline}, on a set of ${sizeText(n)} members`, samples: cycle.fullFloor },
        note: fullFloorNote,
        params: { ...floorParams, floorSetMembers: n },
      });
      ctx.figure({
        id: 'redis.redis-cpu-vs-full-script-floor',
        label: redisCpuLabel,
        unit: 'µs',
        better: 'lower',
        value: subjectCosts.redisCpu,
        baseline: { label: `the script floor on a set of ${sizeText(n)} members, the same rounds`, samples: fullFloorCosts.redisCpu },
        note: fullFloorNote,
        params: { ...floorParams, floorSetMembers: n },
      });
      ctx.figure({
        id: 'redis.commands-per-transition',
        label: commandsLabel,
        unit: 'cmd/transition',
        better: 'lower',
        value: subjectCosts.commands,
        baseline: { label: 'the script floor: ZADD / ZREM + XADD', samples: floorCosts.commands },
        note: `context; XREAD per transition, not counted: ${Number(median(subjectCosts.xreads).toPrecision(3))} in the subject's rounds, ${Number(median(floorCosts.xreads).toPrecision(3))} in the floor's`,
        params: floorParams,
      });
      const latencyParams = { eventsPerSecond: EVENT_RATE, secondsPerRound: latencySeconds, paceMs: PACE_MS };
      const rawLatencyLabel = 'XADD, XREAD BLOCK on a 2nd connection, createClient defaults';
      ctx.figure({
        id: 'redis.latency-p50',
        label: latencyLabel('p50'),
        unit: 'ms',
        better: 'lower',
        value: latency.subject.map((run) => run.p50),
        baseline: { label: rawLatencyLabel, samples: latency.xread.map((run) => run.p50) },
        params: latencyParams,
      });
      ctx.figure({
        id: 'redis.latency-p99',
        label: latencyLabel('p99'),
        unit: 'ms',
        better: 'lower',
        value: latency.subject.map((run) => run.p99),
        baseline: { label: rawLatencyLabel, samples: latency.xread.map((run) => run.p99) },
        target: { value: 2 },
        params: latencyParams,
      });
      ctx.figure({
        id: 'redis.latency-p99-untimed',
        label: latencyLabel('p99'),
        unit: 'ms',
        better: 'lower',
        value: latency.subject.map((run) => run.p99),
        baseline: { label: 'XADD, XREAD BLOCK on a 2nd connection, commandOptions { timeout: 0 }', samples: latency.untimed.map((run) => run.p99) },
        note: untimedNote,
        params: latencyParams,
      });
      ctx.figure({
        id: 'redis.latency-rate',
        label: rateLabel,
        unit: 'events/s',
        better: 'higher',
        value: latency.subject.map((run) => run.rate),
        baseline: { label: rawLatencyLabel, samples: latency.xread.map((run) => run.rate) },
        target: { value: RATE_FLOOR },
        params: latencyParams,
      });
    } finally {
      for (const closable of closables.reverse()) await closable.close().catch(() => undefined);
      await server.stop();
    }
  },
};
