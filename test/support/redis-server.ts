/**
 * Throwaway `redis-server` processes for real-Redis tests: each on a free
 * loopback port with a fresh working directory and no persistence, so tests
 * never touch a Redis already running on the machine (e.g. 127.0.0.1:6379),
 * nor each other's.
 */
import { ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// Not the globals: a test using jest's fake timers must not freeze our waits.
import { clearTimeout, setTimeout } from 'node:timers';
import { promisify } from 'node:util';
import { runInThisContext } from 'node:vm';
import { pollUntil } from './wait-until';

const execFileAsync = promisify(execFile);

const HOST = '127.0.0.1';
const READY_LINE = 'Ready to accept connections';
const PORT_IN_USE = 'Address already in use';
const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5_000;
const START_ATTEMPTS = 5;
const CLUSTER_OK_TIMEOUT_MS = 15_000;
const CLUSTER_POLL_INTERVAL_MS = 50;
/** Enough of a server's log for an error message, without growing forever. */
const OUTPUT_LIMIT = 64 * 1024;

export interface RedisServer {
  readonly host: string;
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly isRunning: boolean;
  /** SIGTERM and await exit; SIGKILL if it has not exited after 5 s. No-op if not running. */
  stop(): Promise<void>;
  /** Stop (if running), then start again on the same port and await readiness. */
  restart(): Promise<void>;
  /** SIGKILL and await exit: a crash, with no graceful shutdown. No-op if not running. */
  kill(): Promise<void>;
  /** SIGSTOP: the server stalls, its connections open but unanswered (a frozen host, a long GC pause). */
  pause(): void;
  /** SIGCONT after {@link pause}. */
  resume(): void;
  /** SAVE, then a copy of the snapshot kept aside; resolves its path, for {@link restartFrom}. */
  snapshot(): Promise<string>;
  /** Stops the server, puts `snapshot` in place of its data, and starts it again: a restore from a backup. */
  restartFrom(snapshot: string): Promise<void>;
  /** Runs a command through redis-cli against this server; resolves its output. */
  cli(...args: string[]): Promise<string>;
}

export interface RedisServerOptions {
  /** A fixed port; when given, a port clash fails instead of retrying elsewhere. */
  port?: number;
  extraArgs?: string[];
}

export interface RedisCluster {
  nodes: RedisServer[];
  /** In the shape node-redis's `createCluster({ rootNodes })` takes. */
  rootNodes: { url: string }[];
  stop(): Promise<void>;
  /** The running master serving `key`'s slot, and its replicas, as the cluster sees them now. */
  ownersOf(key: string): Promise<{ master: RedisServer; replicas: RedisServer[] }>;
  /** Resolves once every running node reports cluster_state:ok (bounded). */
  untilOk(): Promise<void>;
}

// ---------------------------------------------------------------------------
// Cleanup registry
// ---------------------------------------------------------------------------

interface Registry {
  children: Set<ChildProcess>;
  directories: Set<string>;
}

/**
 * Jest gives each test file a copy of `process` whose 'exit' event never
 * fires, so the handler must go on the worker's real process, reached through
 * the host context. One registry per worker (not per test file, which
 * re-evaluates this module) keeps it to a single 'exit' listener.
 */
const hostProcess = runInThisContext('process') as NodeJS.Process;
const registryKey = Symbol.for('nestjs-mtproto-sessions/test/redis-server-registry');
type ProcessWithRegistry = NodeJS.Process & { [registryKey]?: Registry };

function registry(): Registry {
  const host = hostProcess as ProcessWithRegistry;
  let existing = host[registryKey];
  if (existing === undefined) {
    const created: Registry = { children: new Set(), directories: new Set() };
    // 'exit' handlers must be synchronous: kill() and rmSync() are.
    host.on('exit', () => {
      for (const child of created.children) child.kill('SIGKILL');
      for (const directory of created.directories) rmSync(directory, { recursive: true, force: true });
    });
    host[registryKey] = created;
    existing = created;
  }
  return existing;
}

// ---------------------------------------------------------------------------
// Ports and processes
// ---------------------------------------------------------------------------

/**
 * A loopback port nothing listens on right now. Another process may take it
 * before we use it, which is why startRedisServer retries on a clash.
 */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  if (address === null || typeof address === 'string') throw new Error(`unexpected server address ${String(address)}`);
  return address.port;
}

class PortInUseError extends Error {}

/** A started redis-server child and a promise of its exit. */
interface LaunchedProcess {
  child: ChildProcess;
  exited: Promise<void>;
}

/**
 * Whether a server's process and pipes keep the event loop alive. A running
 * server does not: a test that forgets to stop one must not leave jest
 * hanging, and the 'exit' handler then kills it. While we wait on it (start,
 * stop) it does, so the wait itself keeps the loop alive.
 */
function holdEventLoop(child: ChildProcess, hold: boolean): void {
  // The pipes are net.Sockets at run time, though typed as plain streams.
  for (const handle of [child, child.stdout, child.stderr]) {
    if (handle instanceof ChildProcess || handle instanceof Socket) {
      if (hold) handle.ref();
      else handle.unref();
    }
  }
}

/** Spawns redis-server with `args` and resolves once it accepts connections. */
async function launch(args: string[]): Promise<LaunchedProcess> {
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const { children } = registry();
  children.add(child);

  let output = '';
  let ready = false;
  let onReady = (): void => {};
  // Keep draining stdout/stderr for the server's whole life: a full pipe
  // would block redis-server on its next log line.
  const capture = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_LIMIT);
    if (!ready && output.includes(READY_LINE)) {
      ready = true;
      onReady();
    }
  };
  child.stdout?.on('data', capture);
  child.stderr?.on('data', capture);

  let spawnError: Error | undefined;
  const exited = new Promise<void>((resolve) => {
    child.on('error', (error) => {
      // Spawn failures (e.g. ENOENT) emit 'error' and may never emit 'exit'.
      spawnError = error;
      children.delete(child);
      resolve();
    });
    child.once('exit', () => {
      children.delete(child);
      resolve();
    });
  });

  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      onReady = resolve;
      exited.then(() => {
        if (output.includes(PORT_IN_USE)) reject(new PortInUseError(`redis-server ${args.join(' ')}: ${PORT_IN_USE}`));
        else reject(new Error(`redis-server exited before it was ready${spawnError ? ` (${spawnError.message})` : ''}:\n${output}`));
      });
      timer = setTimeout(
        () => reject(new Error(`redis-server not ready after ${READY_TIMEOUT_MS} ms:\n${output}`)),
        READY_TIMEOUT_MS,
      );
      if (ready) resolve();
    });
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    throw error;
  } finally {
    clearTimeout(timer);
  }
  holdEventLoop(child, false);
  return { child, exited };
}

async function terminate(launched: LaunchedProcess, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  holdEventLoop(launched.child, true);
  launched.child.kill(signal);
  if (signal === 'SIGKILL') return launched.exited;
  const escalation = setTimeout(() => launched.child.kill('SIGKILL'), STOP_GRACE_MS);
  try {
    await launched.exited;
  } finally {
    clearTimeout(escalation);
  }
}

class ManagedRedisServer implements RedisServer {
  readonly host = HOST;
  private snapshots = 0;

  constructor(
    readonly port: number,
    private readonly args: string[],
    private launched: LaunchedProcess,
    /** Its working directory, where SAVE writes dump.rdb and a restart reads it. */
    private readonly directory: string,
  ) {}

  pause(): void {
    if (this.isRunning) this.launched.child.kill('SIGSTOP');
  }

  resume(): void {
    if (this.isRunning) this.launched.child.kill('SIGCONT');
  }

  async snapshot(): Promise<string> {
    await this.cli('SAVE');
    const copy = join(this.directory, `snapshot-${++this.snapshots}.rdb`);
    copyFileSync(join(this.directory, 'dump.rdb'), copy);
    return copy;
  }

  async restartFrom(snapshot: string): Promise<void> {
    // With no save points (--save ""), a stopped server writes nothing over the restored file.
    await this.stop();
    copyFileSync(snapshot, join(this.directory, 'dump.rdb'));
    await this.restart();
  }

  cli(...args: string[]): Promise<string> {
    return redisCli(['-h', HOST, '-p', String(this.port), ...args]);
  }

  get url(): string {
    return `redis://${HOST}:${this.port}`;
  }

  get isRunning(): boolean {
    // Both are set synchronously when the child's 'exit' event fires.
    return this.launched.child.exitCode === null && this.launched.child.signalCode === null;
  }

  async stop(): Promise<void> {
    // A stopped (SIGSTOP) process would not act on SIGTERM until continued.
    this.resume();
    if (this.isRunning) await terminate(this.launched, 'SIGTERM');
  }

  async kill(): Promise<void> {
    if (this.isRunning) await terminate(this.launched, 'SIGKILL');
  }

  async restart(): Promise<void> {
    await this.stop();
    try {
      this.launched = await launch(this.args);
    } catch (error) {
      if (error instanceof PortInUseError) {
        throw new Error(`cannot restart redis-server: port ${this.port} was taken while it was stopped`, { cause: error });
      }
      throw error;
    }
  }
}

/**
 * Extra command-line arguments for one server, given its working directory;
 * a function so that each retry can pick fresh ports of its own.
 */
type ExtraArgsFor = (directory: string) => Promise<string[]>;

async function startWithRetry(requestedPort: number | undefined, extraArgsFor: ExtraArgsFor): Promise<RedisServer> {
  // A fixed port cannot move elsewhere, so it gets a single attempt.
  const attempts = requestedPort === undefined ? START_ATTEMPTS : 1;
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const port = requestedPort ?? (await freePort());
    // Fresh per attempt: a failed cluster node may already have written nodes.conf.
    const directory = mkdtempSync(join(tmpdir(), 'redis-test-'));
    registry().directories.add(directory);
    const args = [
      '--port', String(port),
      '--bind', HOST,
      '--save', '',
      '--appendonly', 'no',
      '--dir', directory,
      '--logfile', '',
      ...(await extraArgsFor(directory)),
    ];
    try {
      return new ManagedRedisServer(port, args, await launch(args), directory);
    } catch (error) {
      // Only a port clash (the window between freePort() and bind) is worth
      // retrying; any other early exit would just fail the same way again.
      if (!(error instanceof PortInUseError)) throw error;
      lastError = error;
    }
  }
  const what = requestedPort === undefined ? `a free port in ${attempts} attempts` : `port ${requestedPort}`;
  throw new Error(`redis-server could not bind ${what}: ${PORT_IN_USE}`, { cause: lastError });
}

/** Starts `redis-server` on a free loopback port and resolves once it is ready. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const extraArgs = options.extraArgs ?? [];
  return startWithRetry(options.port, async () => extraArgs);
}

// ---------------------------------------------------------------------------
// Cluster
// ---------------------------------------------------------------------------

async function redisCli(args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('redis-cli', args, { timeout: 20_000, encoding: 'utf8' });
  return stdout;
}

async function clusterStateIsOk(node: RedisServer): Promise<boolean> {
  try {
    return (await redisCli(['-h', node.host, '-p', String(node.port), 'cluster', 'info'])).includes('cluster_state:ok');
  } catch {
    return false;
  }
}

/**
 * Starts `masters` cluster-enabled servers (no replicas), joins them with
 * `redis-cli --cluster create`, and resolves once every node reports
 * `cluster_state:ok`. `extraArgs` go to every node, after the defaults
 * (e.g. `--appendonly yes` to keep data over a restart).
 */
export async function startRedisCluster(options: { masters?: number; replicasPerMaster?: number; extraArgs?: string[] } = {}): Promise<RedisCluster> {
  const masters = options.masters ?? 3;
  const replicas = options.replicasPerMaster ?? 0;
  const extraArgs = options.extraArgs ?? [];
  if (!Number.isInteger(masters) || masters < 3) {
    throw new Error(`a Redis Cluster needs at least 3 masters, got ${masters}`);
  }
  if (!Number.isInteger(replicas) || replicas < 0 || replicas > 2) {
    throw new Error(`replicasPerMaster must be 0, 1 or 2, got ${replicas}`);
  }

  const started = await Promise.allSettled(
    Array.from({ length: masters * (1 + replicas) }, () =>
      startWithRetry(undefined, async (directory) => [
        '--cluster-enabled', 'yes',
        // In the server's own directory, so restart() finds its identity again.
        '--cluster-config-file', join(directory, 'nodes.conf'),
        '--cluster-node-timeout', '2000',
        // The bus port defaults to port + 10000, which may be taken or, for
        // an ephemeral port above 55535, not a port at all.
        '--cluster-port', String(await freePort()),
        ...extraArgs,
      ]),
    ),
  );
  const nodes = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((node) => node.stop()));
  };
  const failure = started.find((result) => result.status === 'rejected');
  if (failure) {
    await stop();
    throw failure.reason;
  }

  try {
    await redisCli([
      '--cluster', 'create',
      ...nodes.map((node) => `${node.host}:${node.port}`),
      '--cluster-replicas', String(replicas),
      '--cluster-yes',
    ]);
    await untilClusterOk(nodes);
    // Replicas attach after the slots are assigned; wait until each master has its own.
    if (replicas > 0) await untilReplicasAttached(nodes, masters, replicas);
  } catch (error) {
    await stop();
    throw error;
  }

  const ownersOf = async (key: string) => {
    const topology = await clusterTopology(nodes);
    const slot = Number((await redisCli(['-h', HOST, '-p', String(running(nodes)[0]!.port), 'cluster', 'keyslot', key])).trim());
    const owner = topology.find((node) => node.master && node.slots.some(([from, to]) => slot >= from && slot <= to));
    if (owner === undefined) throw new Error(`no running master serves slot ${slot}`);
    return { master: owner.server, replicas: topology.filter((node) => node.masterId === owner.id).map((node) => node.server) };
  };
  return { nodes, rootNodes: nodes.map((node) => ({ url: node.url })), stop, ownersOf, untilOk: () => untilClusterOk(nodes) };
}

function running(nodes: RedisServer[]): RedisServer[] {
  return nodes.filter((node) => node.isRunning);
}

interface ClusterNodeInfo {
  id: string;
  server: RedisServer;
  master: boolean;
  /** The master a replica follows. */
  masterId: string | undefined;
  slots: [number, number][];
}

/** CLUSTER NODES as each running node reports itself (its own line, flagged "myself"). */
async function clusterTopology(nodes: RedisServer[]): Promise<ClusterNodeInfo[]> {
  const infos = await Promise.all(running(nodes).map(async (server) => {
    const lines = (await redisCli(['-h', HOST, '-p', String(server.port), 'cluster', 'nodes'])).split('\n');
    const own = lines.find((line) => line.includes('myself'));
    if (own === undefined) throw new Error(`node ${server.port} does not list itself in CLUSTER NODES`);
    const [id = '', , flags = '', masterId = '-', , , , , ...slots] = own.trim().split(' ');
    return {
      id,
      server,
      master: flags.includes('master'),
      masterId: masterId === '-' ? undefined : masterId,
      slots: slots.filter((range) => !range.startsWith('[')).map((range) => {
        const [from, to = from] = range.split('-');
        return [Number(from), Number(to)] as [number, number];
      }),
    };
  }));
  return infos;
}

/** Polls (bounded): nodes learn of each other over the cluster bus, and no event says when they agree. */
async function untilClusterOk(nodes: RedisServer[]): Promise<void> {
  await pollUntil(
    async () => (await Promise.all(running(nodes).map(clusterStateIsOk))).every(Boolean),
    () => `Redis Cluster state ok on ports ${running(nodes).map((node) => node.port).join(', ')}`,
    { timeoutMs: CLUSTER_OK_TIMEOUT_MS, intervalMs: CLUSTER_POLL_INTERVAL_MS },
  );
}

async function untilReplicasAttached(nodes: RedisServer[], masters: number, replicas: number): Promise<void> {
  await pollUntil(
    async () => {
      const topology = await clusterTopology(nodes);
      const leaders = topology.filter((node) => node.master && node.slots.length > 0);
      const linked = await Promise.all(topology.filter((node) => !node.master).map(async (node) =>
        (await redisCli(['-h', HOST, '-p', String(node.server.port), 'info', 'replication'])).includes('master_link_status:up')));
      return leaders.length === masters && leaders.every((leader) => topology.filter((node) => node.masterId === leader.id).length === replicas) && linked.every(Boolean);
    },
    'every Redis Cluster master with its replicas attached',
    { timeoutMs: CLUSTER_OK_TIMEOUT_MS, intervalMs: CLUSTER_POLL_INTERVAL_MS },
  );
}

// ---------------------------------------------------------------------------
// Availability gate
// ---------------------------------------------------------------------------

function onPath(command: string): boolean {
  const result = spawnSync(command, ['--version'], { stdio: 'ignore' });
  return result.error === undefined && result.status === 0;
}

/** Whether `redis-server` and `redis-cli` can be run; checked once, synchronously, at load. */
export const redisAvailable: boolean = onPath('redis-server') && onPath('redis-cli');

export type RedisDescribe = (name: string, fn: () => void) => void;

const INSTALL_HINT = 'install Debian package redis-server (and redis-tools for redis-cli)';

function currentTestFile(): string {
  return expect.getState().testPath ?? '(unknown test file)';
}

/**
 * `describe` for tests that need real Redis. With redis-server and redis-cli
 * available, it is `describe`, and (when REDIS_TESTS_MARKER names a file) it
 * appends a line there once the block's tests start, so CI can tell the Redis
 * tests really ran. Without them: in CI (CI=true) a single failing test, so a
 * missing Redis can never pass as green; elsewhere a loud warning and a skip.
 */
export const describeRedis: RedisDescribe = (name, fn) => {
  if (redisAvailable) {
    describe(name, () => {
      // beforeAll runs only if some test in this block is about to run, so
      // a skipped or filtered-out block does not count.
      beforeAll(() => {
        const marker = process.env.REDIS_TESTS_MARKER;
        if (marker) appendFileSync(marker, `${currentTestFile()} :: ${name}\n`);
      });
      fn();
    });
    return;
  }
  if (process.env.CI === 'true') {
    describe(name, () => {
      test('redis-server is available', () => {
        throw new Error(`redis-server is required in CI; ${INSTALL_HINT}`);
      });
    });
    return;
  }
  const rule = '!'.repeat(78);
  console.warn(
    `${rule}\n!! SKIPPING real-Redis tests "${name}" in ${currentTestFile()}\n` +
      `!! redis-server/redis-cli not found on PATH; ${INSTALL_HINT}\n${rule}`,
  );
  describe.skip(name, fn);
};
