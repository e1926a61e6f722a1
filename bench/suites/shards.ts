/**
 * Key groups (`shards`) of RedisSessionStorage, `shards: 12` against
 * `shards: 1` side by side in the same rounds:
 *
 * - on a 3-master Redis Cluster the suite starts itself (cluster-enabled
 *   redis-servers on free loopback ports, joined by `redis-cli --cluster
 *   create`): the share of a create+destroy burst's script calls (EVAL +
 *   EVALSHA in INFO commandstats, per node) that the busiest master ran, and
 *   the create+destroy rate of two client processes together;
 * - on one standalone redis-server: create+destroy through the subject, and
 *   the latency from instance A's call to instance B's observer at 10^4
 *   events/s (as in the redis suite).
 */
import { execFile } from 'node:child_process';
import { createClient, createCluster } from 'redis';
import { SessionSubject, type SessionEvent } from '../../src/index.js';
import { RedisSessionStorage, type NodeRedisClient } from '../../src/storages/redis/index.js';
import { defineTask, type Json, type Suite } from '../harness.js';
import { expectEqual, RecordingLogger } from '../support.js';
import {
  freePort,
  inFlight,
  latencyRounds,
  paceAndMeasure,
  randomIds,
  redisServerAvailable,
  startRedisServer,
  subjectLatencyWriter,
  type BenchRedisServer,
  type LatencyReceiver,
} from './redis.js';

const SHARDS = 12;
const IN_FLIGHT = 1000;
/** The paced rate of the latency figures, as in the redis suite. */
const EVENT_RATE = 10_000;
const CLUSTER_OK_TIMEOUT_MS = 20_000;
/** How far ahead the two client processes are given a common start time, so both run the whole time. */
const START_AHEAD_MS = 1500;

interface BenchCluster {
  readonly nodes: readonly BenchRedisServer[];
  stop(): Promise<void>;
}

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 30_000, encoding: 'utf8' }, (error, stdout) => (error ? reject(error) : resolve(stdout)));
  });
}

/** Sends one command to one node on a connection of its own. */
async function nodeCommand(node: BenchRedisServer, args: string[]): Promise<unknown> {
  const client = createClient({ url: node.url, socket: { reconnectStrategy: false } });
  await client.connect();
  try {
    return await client.sendCommand(args);
  } finally {
    client.destroy();
  }
}

/** Three cluster-enabled servers, no replicas, joined and agreeing (polled, bounded: nothing announces it). */
async function startCluster(): Promise<BenchCluster> {
  const nodes = await Promise.all(Array.from({ length: 3 }, () => startRedisServer(async () => [
    '--cluster-enabled', 'yes', '--cluster-node-timeout', '2000', '--cluster-port', String(await freePort()),
  ])));
  const stop = async () => {
    await Promise.all(nodes.map((node) => node.stop()));
  };
  try {
    await run('redis-cli', ['--cluster', 'create', ...nodes.map((node) => `127.0.0.1:${node.port}`), '--cluster-replicas', '0', '--cluster-yes']);
    const deadline = Date.now() + CLUSTER_OK_TIMEOUT_MS;
    for (;;) {
      const states = await Promise.all(nodes.map(async (node) => String(await nodeCommand(node, ['CLUSTER', 'INFO'])).includes('cluster_state:ok')));
      if (states.every(Boolean)) break;
      if (Date.now() > deadline) throw new Error(`the bench Cluster was not ok after ${CLUSTER_OK_TIMEOUT_MS} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { nodes, stop };
}

/** EVAL and EVALSHA calls a node ran since its last CONFIG RESETSTAT. */
async function scriptCalls(node: BenchRedisServer): Promise<number> {
  const info = String(await nodeCommand(node, ['INFO', 'commandstats']));
  let calls = 0;
  for (const match of info.matchAll(/^cmdstat_(eval|evalsha):calls=(\d+)/gm)) calls += Number(match[2]);
  return calls;
}

async function connectCluster(rootUrls: readonly string[]): Promise<NodeRedisClient & { close(): Promise<unknown> }> {
  const client = createCluster({ rootNodes: rootUrls.map((url) => ({ url })) });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/**
 * One client process of the two-process figure: its own Cluster client and
 * storage, `cycles` create+destroy cycles with {@link IN_FLIGHT} in flight,
 * started at the common `startAt` (ms since the epoch); reports when it ended.
 */
const CLIENT_PROCESS = defineTask('shards/cluster-client', async (params) => {
  const { rootUrls, keyPrefix, shards, cycles, seed, startAt } = params as { rootUrls: string[]; keyPrefix: string; shards: number; cycles: number; seed: number; startAt: number };
  const logger = new RecordingLogger();
  const client = await connectCluster(rootUrls);
  const storage = new RedisSessionStorage({ client, keyPrefix, shards, logger });
  const subject = new SessionSubject(storage, { logger });
  try {
    await subject.ready();
    const ids = randomIds(cycles, seed);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, startAt - Date.now())));
    const started = Date.now();
    const done = await inFlight(cycles, IN_FLIGHT, async (i) => (await subject.createSession(ids[i]!)) && subject.destroySession(ids[i]!));
    const endedAt = Date.now();
    expectEqual(done, cycles, 'sessions created and destroyed');
    logger.assertQuiet('a Cluster client process');
    return { startedAt: started, endedAt } satisfies Json;
  } finally {
    await subject.close();
    await client.close();
  }
});

export const shardsSuite: Suite = {
  name: 'shards',
  description: `RedisSessionStorage with shards: ${SHARDS} against shards: 1: the busiest Cluster master's share of script calls, two processes' create+destroy on a Cluster, create+destroy and cross-instance latency on standalone`,
  async run(ctx) {
    const burst = ctx.pick({ quick: 500, default: 10_000 });
    const processCycles = ctx.pick({ quick: 1_000, default: 20_000 });
    const processRounds = ctx.pick({ quick: 1, default: 3 });
    const cycles = ctx.pick({ quick: 2_000, default: 20_000 });
    const latencySeconds = ctx.pick({ quick: 0.3, default: 3 });
    const transitions = Math.round(EVENT_RATE * latencySeconds);
    const shareLabel = `busiest master's share of script calls, ${burst} create+destroy, 3-master Cluster, shards: ${SHARDS} vs 1`;
    const processLabel = `create+destroy from 2 client processes together, ${IN_FLIGHT} in flight each, 3-master Cluster, shards: ${SHARDS} vs 1`;
    const cycleLabel = `subject.createSession + destroySession, ${IN_FLIGHT} in flight, standalone, shards: ${SHARDS} vs 1`;
    const latencyLabel = (p: string) => `event latency ${p}, A's call → B's observer, at ${EVENT_RATE.toLocaleString('en-US')} events/s, standalone, shards: ${SHARDS} vs 1`;
    const figureSpecs = [
      ['shards.cluster-busiest-share', shareLabel, 'share', 'lower'],
      ['shards.cluster-two-process-cycles', processLabel, 'cycles/s', 'higher'],
      ['shards.standalone-cycle', cycleLabel, 'cycles/s', 'higher'],
      ['shards.standalone-latency-p50', latencyLabel('p50'), 'ms', 'lower'],
      ['shards.standalone-latency-p99', latencyLabel('p99'), 'ms', 'lower'],
    ] as const;
    if (!redisServerAvailable()) {
      for (const [id, label, unit, better] of figureSpecs) ctx.figure({ id, label, unit, better, value: null, baseline: null, unavailable: 'redis-server not on PATH' });
      return;
    }
    const logger = new RecordingLogger();

    // ------------------------------------------------------------ Cluster
    const cluster = await startCluster();
    const rootUrls = cluster.nodes.map((node) => node.url);
    ctx.progress(`3-master Cluster at ${rootUrls.join(', ')}`);
    const shares: Record<'sharded' | 'single', number[]> = { sharded: [], single: [] };
    const processRates: Record<'sharded' | 'single', number[]> = { sharded: [], single: [] };
    try {
      const client = await connectCluster(rootUrls);
      try {
        let prefixes = 0;
        const share = async (shards: number) => {
          const storage = new RedisSessionStorage({ client, keyPrefix: `bench-share-${shards}-${++prefixes}`, shards, logger });
          try {
            await storage.ready();
            await Promise.all(cluster.nodes.map((node) => nodeCommand(node, ['CONFIG', 'RESETSTAT'])));
            const ids = randomIds(burst, 40 + prefixes);
            const done = await inFlight(burst, IN_FLIGHT, async (i) => (await storage.createSession(ids[i]!)) && storage.destroySession(ids[i]!));
            expectEqual(done, burst, 'sessions created and destroyed');
            const calls = await Promise.all(cluster.nodes.map(scriptCalls));
            return Math.max(...calls) / calls.reduce((sum, count) => sum + count, 0);
          } finally {
            await storage.close();
          }
        };
        for (let round = 0; round < ctx.options.rounds; round++) {
          for (const [name, shards] of (round % 2 === 0 ? [['sharded', SHARDS], ['single', 1]] : [['single', 1], ['sharded', SHARDS]]) as ['sharded' | 'single', number][]) {
            shares[name].push(await share(shards));
          }
        }
        ctx.progress(`busiest master's share: shards ${SHARDS} ${shares.sharded.map((s) => s.toFixed(3)).join(' ')}; shards 1 ${shares.single.map((s) => s.toFixed(3)).join(' ')}`);
      } finally {
        await client.close();
      }

      for (let round = 0; round < processRounds; round++) {
        for (const [name, shards] of (round % 2 === 0 ? [['sharded', SHARDS], ['single', 1]] : [['single', 1], ['sharded', SHARDS]]) as ['sharded' | 'single', number][]) {
          const startAt = Date.now() + START_AHEAD_MS;
          const keyPrefix = `bench-processes-${shards}-${round}`;
          const ends = await Promise.all([0, 1].map((child) => ctx.isolated<{ startedAt: number; endedAt: number }>(CLIENT_PROCESS, {
            rootUrls, keyPrefix, shards, cycles: processCycles, seed: 60 + 2 * round + child, startAt,
          })));
          const from = Math.min(...ends.map((end) => end.startedAt));
          const to = Math.max(...ends.map((end) => end.endedAt));
          const rate = (2 * processCycles) / ((to - from) / 1000);
          ctx.progress(`  two processes, shards ${shards}: ${Math.round(rate)} cycles/s`);
          processRates[name].push(rate);
        }
      }
    } finally {
      await cluster.stop();
    }

    // ------------------------------------------------------------ standalone
    const server = await startRedisServer();
    ctx.progress(`redis-server at ${server.url}`);
    const closables: { close(): Promise<unknown> }[] = [];
    try {
      const pair = async (shards: number, keyPrefix: string) => {
        const storage = new RedisSessionStorage({ url: server.url, keyPrefix, shards, logger });
        const subject = new SessionSubject(storage, { logger });
        closables.push(subject);
        return { storage, subject };
      };
      const sharded = await pair(SHARDS, 'bench-cycle-sharded');
      const single = await pair(1, 'bench-cycle-single');
      await Promise.all([sharded.subject.ready(), single.subject.ready()]);
      const fresh = randomIds(cycles, 70);
      const cycling = (subject: SessionSubject, what: string) => ({
        ops: cycles,
        async run() {
          const done = await inFlight(cycles, IN_FLIGHT, async (i) => (await subject.createSession(fresh[i]!)) && subject.destroySession(fresh[i]!));
          expectEqual(done, cycles, `${what}: sessions created and destroyed`);
        },
      });
      ctx.progress(`${cycles} create + destroy cycles per round, ${IN_FLIGHT} in flight`);
      const cycle = await ctx.rates({ sharded: cycling(sharded.subject, `shards ${SHARDS}`), single: cycling(single.subject, 'shards 1') });

      // Instance A makes the transitions, instance B hears them through its readers.
      const latencyPair = async (shards: number) => {
        const keyPrefix = `bench-latency-${shards}`;
        const a = await pair(shards, keyPrefix);
        const b = await pair(shards, keyPrefix);
        let receiver: LatencyReceiver | undefined;
        b.subject.subscribe({ update: (event: SessionEvent) => receiver?.receive(event.type === 'created', event.sessionId) });
        await Promise.all([a.subject.ready(), b.subject.ready()]);
        // Warm the scripts on this server (a first EVAL falls back from NOSCRIPT; the pacer issues a destroy right behind its create).
        await a.subject.createSession(-1n);
        await a.subject.destroySession(-1n);
        const writer = subjectLatencyWriter(a.subject, `shards ${shards} latency run`);
        return { writer, attach: (next: LatencyReceiver | undefined) => (receiver = next) };
      };
      const latencySharded = await latencyPair(SHARDS);
      const latencySingle = await latencyPair(1);
      ctx.progress(`${transitions} transitions per round at ${EVENT_RATE} per second`);
      const latency = await latencyRounds(
        ctx,
        {
          sharded: (count, seed) => paceAndMeasure(count, seed, latencySharded.writer, latencySharded.attach, `shards ${SHARDS} latency run`),
          single: (count, seed) => paceAndMeasure(count, seed, latencySingle.writer, latencySingle.attach, 'shards 1 latency run'),
        },
        transitions,
        Math.round(transitions / 3),
      );
      logger.assertQuiet('the shards suite');

      const params = { shards: SHARDS };
      ctx.figure({
        id: 'shards.cluster-busiest-share',
        label: shareLabel,
        unit: 'share',
        better: 'lower',
        value: shares.sharded,
        baseline: { label: 'shards: 1 (every key under one hash tag)', samples: shares.single },
        target: { value: 0.45 },
        params: { ...params, cyclesPerRound: burst, masters: 3 },
      });
      ctx.figure({
        id: 'shards.cluster-two-process-cycles',
        label: processLabel,
        unit: 'cycles/s',
        better: 'higher',
        value: processRates.sharded,
        baseline: { label: 'shards: 1', samples: processRates.single },
        note: 'both processes and all three masters share this machine\'s cores',
        params: { ...params, cyclesPerProcess: processCycles, processes: 2, masters: 3 },
      });
      ctx.figure({
        id: 'shards.standalone-cycle',
        label: cycleLabel,
        unit: 'cycles/s',
        better: 'higher',
        value: cycle.sharded,
        baseline: { label: 'shards: 1', samples: cycle.single },
        target: { ratio: 0.9 },
        params: { ...params, cyclesPerRound: cycles, inFlight: IN_FLIGHT },
      });
      for (const p of ['p50', 'p99'] as const) {
        ctx.figure({
          id: `shards.standalone-latency-${p}`,
          label: latencyLabel(p),
          unit: 'ms',
          better: 'lower',
          value: latency.sharded.map((run) => run[p]),
          baseline: { label: 'shards: 1', samples: latency.single.map((run) => run[p]) },
          target: { ratio: 0.9 },
          params: { ...params, eventsPerSecond: EVENT_RATE, secondsPerRound: latencySeconds },
        });
      }
    } finally {
      for (const closable of closables.reverse()) await closable.close().catch(() => undefined);
      await server.stop();
    }
  },
};
