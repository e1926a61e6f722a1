import { resolveInstanceId } from '../../core/instance-id.js';
import { assertKnownOptions, describeOptionValue } from '../../core/known-options.js';
import { assertPositiveInteger, LIFETIME_OPTIONS, resolveLifetime, type SessionLifetime, type SessionLifetimeOptions } from '../../core/session-lifetime.js';
import { assertLogger, type SessionLogger } from '../../core/session-logger.js';
import { isIORedisClient, isNodeRedisClient, type IORedisClient, type NodeRedisClient } from './redis-client.js';
import type { RedisConnectionSource } from './redis-command-client.js';
import { groupKeys, MAX_SHARDS } from './redis-key-routing.js';
import { DEFAULT_KEY_PREFIX, layoutKeys, type RedisLayoutKeys, type RedisSessionKeys } from './redis-keys.js';

export interface RedisSessionStorageOptions extends SessionLifetimeOptions {
  /** A Redis URL (`redis://127.0.0.1:6379`); the storage opens and owns its connections. Give this or `client`. */
  url?: string;
  /**
   * A client that the application owns; the storage never closes it. A
   * node-redis client or cluster (`createClient`, `createCluster`), connected
   * or connecting (`connect()` called: one that is not is refused), or an
   * ioredis `Redis` or `Cluster` (the storage opens its own connections from
   * it). Give this or `url`.
   */
  client?: NodeRedisClient | IORedisClient;
  /** Namespace for this application's keys, so several applications can share one Redis. Default `mtproto-sessions`. */
  keyPrefix?: string;
  /** Names this instance in the events it records; a random UUID by default. */
  instanceId?: string;
  /**
   * A call Redis does not answer fails with `SessionStorageTimeoutError` after this many ms, never sooner, and settles
   * within 1.25 × it. A create or destroy that fails never takes effect later (fencing). Default 2000.
   */
  commandTimeout?: number;
  /**
   * About how many events the shared stream keeps for readers that fall
   * behind or reconnect (MAXLEN ~). Default 100,000: about 10 s of transitions
   * at 10^4/s, several times a reader's longest reconnect (commandTimeout plus
   * a backoff of at most 1 s); a reader that misses more is told
   * (SessionEventsMissed) and its replica rebuilds from the sorted set.
   */
  streamMaxLength?: number;
  /**
   * Answer `hasSession` of sessions this instance knows to be live from a local
   * replica fed by the event stream, with no Redis command, within
   * `maxStaleness` (docs/redis.md). Default true; false asks Redis on every
   * lookup.
   */
  localReads?: boolean;
  /**
   * How stale a replica's answer may be, in ms: the replica answers a lookup
   * only within this lease after its reader last heard from Redis at the
   * stream's end; past it, lookups ask Redis (exact, or a typed error when
   * Redis does not answer). Default 2000: a healthy reader hears from Redis at
   * least every second (its blocking read returns empty after a second), so
   * the lease lapses only when the reader is cut off or far behind. `Infinity`
   * opts for availability over freshness: the replica answers however long
   * its reader has been blind.
   */
  maxStaleness?: number;
  /**
   * How often, in ms, each key group is checked against Redis for what
   * changed without a write to show it: data gone (FLUSHALL, a restart
   * without data, a restore, a deleted or evicted key), a replica that no
   * longer matches, a layout record gone or changed. Found within this plus
   * commandTimeout. Default 2000 (4 s with the default commandTimeout).
   */
  verifyInterval?: number;
  /**
   * How many key groups sessions are spread over (1 to 1024), each with its own
   * hash tag, so on a Cluster each group can live on another master. A session's
   * group is a hash of its ids. Every instance of a prefix must use the same
   * value; the layout is recorded in Redis and a different one is refused at
   * `ready()`. Default: 12 with a Cluster client (`createCluster`), so the
   * groups share out over the masters; 1 on standalone Redis, which has one
   * thread to share anyway (the layout of versions before this option).
   */
  shards?: number;
  /** Where connection trouble is reported; the subject's logger once attached, else `console`. */
  logger?: SessionLogger;
}

/** {@link RedisSessionStorageOptions} checked, with defaults filled in. */
export interface ResolvedRedisOptions {
  readonly source: RedisConnectionSource;
  readonly shards: number;
  /** One entry per key group. */
  readonly groups: readonly RedisSessionKeys[];
  readonly layout: RedisLayoutKeys;
  readonly instanceId: string;
  readonly commandTimeout: number;
  readonly streamMaxLength: number;
  readonly lifetime: SessionLifetime;
  readonly localReads: boolean;
  readonly maxStaleness: number;
  readonly verifyInterval: number;
  readonly logger: SessionLogger | undefined;
}

const REDIS_OPTIONS = ['url', 'client', 'keyPrefix', 'instanceId', 'commandTimeout', 'streamMaxLength', 'localReads', 'maxStaleness', 'verifyInterval', 'shards', 'logger', ...LIFETIME_OPTIONS];
const DEFAULT_COMMAND_TIMEOUT = 2000;
/** A day: a longer bound is no bound, and this one leaves a Node timer room for the reader's block on top. */
const MAX_COMMAND_TIMEOUT = 86_400_000;
const DEFAULT_STREAM_MAX_LENGTH = 100_000;
const DEFAULT_LOCAL_READS = true;
const DEFAULT_MAX_STALENESS = 2000;
const DEFAULT_VERIFY_INTERVAL = 2000;
/** Below this the checks would be a load of their own. */
const MIN_VERIFY_INTERVAL = 50;
/** Below this a lease would lapse between two reads of a healthy reader on a loaded machine. */
const MIN_MAX_STALENESS = 100;
/** `shards` when not given: with a Cluster client, and otherwise. */
export const DEFAULT_CLUSTER_SHARDS = 12;
export const DEFAULT_STANDALONE_SHARDS = 1;

/** Checks the options, throwing a `TypeError` that names the bad one and changing nothing. */
export function resolveRedisOptions(options: RedisSessionStorageOptions): ResolvedRedisOptions {
  if (options === null || typeof options !== 'object') throw new TypeError('RedisSessionStorage takes an options object with url or client');
  assertKnownOptions(options, REDIS_OPTIONS, 'RedisSessionStorage');
  if ((options.url === undefined) === (options.client === undefined)) {
    throw new TypeError('RedisSessionStorage needs exactly one of url or client');
  }
  if (options.client !== undefined) assertClient(options.client);
  if (options.url !== undefined) assertRedisUrl(options.url);
  if (options.logger !== undefined) assertLogger(options.logger, 'RedisSessionStorage logger');
  const commandTimeout = options.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT;
  // Timers run for commandTimeout plus the reader's block: both must fit in a Node timer.
  assertPositiveInteger(commandTimeout, 'RedisSessionStorage commandTimeout (ms)', MAX_COMMAND_TIMEOUT);
  const streamMaxLength = options.streamMaxLength ?? DEFAULT_STREAM_MAX_LENGTH;
  assertPositiveInteger(streamMaxLength, 'RedisSessionStorage streamMaxLength');
  const instanceId = resolveInstanceId(options.instanceId, 'RedisSessionStorage');
  const localReads = options.localReads ?? DEFAULT_LOCAL_READS;
  if (typeof localReads !== 'boolean') throw new TypeError(`RedisSessionStorage localReads must be a boolean; got ${describeOptionValue(localReads)}`);
  const maxStaleness = options.maxStaleness ?? DEFAULT_MAX_STALENESS;
  if (maxStaleness !== Infinity) assertPositiveInteger(maxStaleness, 'RedisSessionStorage maxStaleness (ms, or Infinity)', MAX_COMMAND_TIMEOUT);
  if (maxStaleness < MIN_MAX_STALENESS) throw new TypeError(`RedisSessionStorage maxStaleness must be at least ${MIN_MAX_STALENESS} ms (or Infinity); got ${maxStaleness}`);
  const verifyInterval = options.verifyInterval ?? DEFAULT_VERIFY_INTERVAL;
  assertPositiveInteger(verifyInterval, 'RedisSessionStorage verifyInterval (ms)', MAX_COMMAND_TIMEOUT);
  if (verifyInterval < MIN_VERIFY_INTERVAL) throw new TypeError(`RedisSessionStorage verifyInterval must be at least ${MIN_VERIFY_INTERVAL} ms; got ${verifyInterval}`);
  const lifetime = resolveLifetime(options, 'RedisSessionStorage');
  // A node-redis Cluster has masters, an ioredis one says isCluster; a URL always opens a standalone client.
  const client = options.client;
  const cluster = client !== undefined && (isIORedisClient(client) ? client.isCluster : 'masters' in client);
  const shards = options.shards === undefined ? (cluster ? DEFAULT_CLUSTER_SHARDS : DEFAULT_STANDALONE_SHARDS) : options.shards;
  if (typeof shards !== 'number' || !Number.isInteger(shards) || shards < 1 || shards > MAX_SHARDS) {
    throw new TypeError(`RedisSessionStorage shards must be an integer from 1 to ${MAX_SHARDS}; got ${String(shards)}`);
  }
  const prefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
  const layout = layoutKeys(prefix);
  const groups = groupKeys(prefix, shards);
  return {
    source: options.client !== undefined ? { client: options.client } : { url: options.url! },
    shards,
    groups,
    layout,
    instanceId,
    commandTimeout,
    streamMaxLength,
    lifetime,
    localReads,
    maxStaleness,
    verifyInterval,
    logger: options.logger,
  };
}

function assertClient(client: unknown): void {
  if (isIORedisClient(client)) {
    const options = client.options as { keyPrefix?: unknown; redisOptions?: { keyPrefix?: unknown } };
    const prefix = options.keyPrefix ?? options.redisOptions?.keyPrefix;
    if (prefix !== undefined && prefix !== '') {
      throw new TypeError(`RedisSessionStorage client: an ioredis client with keyPrefix ${JSON.stringify(prefix)} is not supported (the storage names its keys itself); give RedisSessionStorage its own keyPrefix option instead`);
    }
    return;
  }
  if (!isNodeRedisClient(client)) {
    throw new TypeError('RedisSessionStorage client must be a node-redis client or cluster (createClient, createCluster) or an ioredis Redis or Cluster');
  }
  // The storage runs its commands on the app's own node-redis connection, which only the app opens: one never
  // opened (or closed already) would leave every call to wait out commandTimeout.
  if ((client as { isOpen?: unknown }).isOpen === false) {
    throw new TypeError('RedisSessionStorage client: this node-redis client is not connected; call client.connect() first (it may still be connecting), or pass url and let the storage connect itself');
  }
}

/**
 * An unset `REDIS_URL` gives `''`, which node-redis would take for
 * localhost:6379: refused, as is anything that is not a redis:// or rediss:// URL.
 */
function assertRedisUrl(url: unknown): asserts url is string {
  const expected = 'a redis:// or rediss:// URL such as redis://127.0.0.1:6379';
  if (typeof url !== 'string') throw new TypeError(`RedisSessionStorage url must be ${expected}; got ${url === null ? 'null' : typeof url}`);
  if (url.trim() === '') throw new TypeError(`RedisSessionStorage url must be ${expected}; got an empty string (is REDIS_URL set?)`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`RedisSessionStorage url must be ${expected}; got ${JSON.stringify(url)}, which is not a URL`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new TypeError(`RedisSessionStorage url must be ${expected}; got the scheme ${JSON.stringify(parsed.protocol)}`);
  }
  // node-redis would take a URL without a host for localhost:6379, as it would an empty one.
  if (parsed.hostname === '') throw new TypeError(`RedisSessionStorage url must be ${expected}; got ${JSON.stringify(url)}, which names no host`);
}
