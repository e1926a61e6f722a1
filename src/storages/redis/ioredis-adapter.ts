import type { IORedisClient, RedisCommands } from './redis-client.js';

type Listener = (...args: unknown[]) => void;
type ScriptOptions = { keys: string[]; arguments: string[] };

/**
 * The storage's command connection: connected by the storage, reconnecting as
 * the app's client does, but never queueing a command while disconnected nor
 * resending one after a reconnect.
 */
const COMMAND_OPTIONS = { lazyConnect: true, enableOfflineQueue: false, autoResendUnfulfilledCommands: false };
/** The reader's dedicated connection: connected by the reader, never reconnecting by itself (the reader replaces it). */
const READER_OPTIONS = { lazyConnect: true, retryStrategy: (): null => null, enableOfflineQueue: true, maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false };

/**
 * An ioredis `Redis` or `Cluster` seen through the node-redis-shaped commands
 * the storage uses (as BullMQ types its client by the commands it sends).
 *
 * ioredis queues commands while it is disconnected (its offline queue), and
 * resends those in flight when a connection breaks, once it is back: a call
 * could wait for minutes, and a transition whose caller was told it failed
 * could happen long after. So the storage sends its commands over connections
 * of its own, duplicated from the application's client (same servers, auth,
 * TLS, retry strategy), with neither: while Redis is away a command fails at
 * once, naming the client's state, and every call settles within
 * `commandTimeout` as on node-redis.
 */
export class IORedisAdapter implements RedisCommands {
  private constructor(private readonly redis: IORedisClient) {}

  /** The storage's own command connection, from the application's client; `connect()` opens it. */
  static commandConnection(app: IORedisClient): IORedisAdapter {
    return new IORedisAdapter(duplicateWith(app, COMMAND_OPTIONS));
  }

  /** Whether this is a Cluster client (its readers then read one key group each). */
  get isCluster(): boolean {
    return this.redis.isCluster;
  }

  get isReady(): boolean {
    return this.redis.status === 'ready';
  }

  evalSha(sha1: string, options: ScriptOptions): Promise<unknown> {
    return this.whenReady() ?? this.redis.evalsha(sha1, options.keys.length, ...options.keys, ...options.arguments);
  }

  eval(source: string, options: ScriptOptions): Promise<unknown> {
    return this.whenReady() ?? this.redis.eval(source, options.keys.length, ...options.keys, ...options.arguments);
  }

  zScore(key: string, member: string): Promise<number | null> {
    return this.whenReady() ?? this.redis.zscore(key, member).then(toScore);
  }

  zCount(key: string, min: string, max: string): Promise<number> {
    return this.whenReady() ?? this.redis.zcount(key, min, max);
  }

  /** ZSCAN in node-redis's reply shape: `{ cursor, members: [{ value, score }] }`. */
  async zScan(key: string, cursor: string, options: { COUNT: number }): Promise<{ cursor: string; members: { value: string; score: number }[] }> {
    const refused = this.whenReady();
    if (refused !== undefined) return refused;
    const [next, elements] = await this.redis.zscan(key, cursor, 'COUNT', options.COUNT);
    const members: { value: string; score: number }[] = [];
    for (let i = 0; i + 1 < elements.length; i += 2) members.push({ value: elements[i]!, score: Number(elements[i + 1]) });
    return { cursor: next, members };
  }

  hmGet(key: string, fields: string[]): Promise<(string | null)[]> {
    return this.whenReady() ?? this.redis.hmget(key, ...fields);
  }

  get(key: string): Promise<string | null> {
    return this.whenReady() ?? this.redis.get(key);
  }

  zCard(key: string): Promise<number> {
    return this.whenReady() ?? this.redis.zcard(key);
  }

  /** XREVRANGE in node-redis's reply shape: `[{ id, message }]`. */
  async xRevRange(key: string, start: string, end: string, options: { COUNT: number }): Promise<{ id: string; message: Record<string, string> }[]> {
    const refused = this.whenReady();
    if (refused !== undefined) return refused;
    const entries = await this.redis.xrevrange(key, start, end, 'COUNT', options.COUNT);
    return entries.map(([id, fields]) => ({ id, message: fieldsToObject(fields) }));
  }

  /** XREAD of one stream or several, in node-redis's reply shape: `[{ name, messages: [{ id, message }] }]`, or null when the block timed out. */
  async xRead(streams: { key: string; id: string } | { key: string; id: string }[], options: { BLOCK: number; COUNT: number }): Promise<unknown> {
    const refused = this.whenReady();
    if (refused !== undefined) return refused;
    const list = Array.isArray(streams) ? streams : [streams];
    const reply = await this.redis.xread('COUNT', options.COUNT, 'BLOCK', options.BLOCK, 'STREAMS', ...list.map((stream) => stream.key), ...list.map((stream) => stream.id));
    if (reply === null) return null;
    return reply.map(([name, entries]) => ({
      name,
      messages: entries.map(([id, fields]) => ({ id, message: fieldsToObject(fields) })),
    }));
  }

  /** A dedicated connection for the event reader: connected by `connect()`, not reconnecting by itself (the reader replaces it). */
  duplicate(): IORedisAdapter {
    return new IORedisAdapter(duplicateWith(this.redis, READER_OPTIONS, { clusterRetryStrategy: () => null }));
  }

  /** ioredis has no per-command timeout option to turn off; the storage bounds every call itself. */
  withCommandOptions(): IORedisAdapter {
    return this;
  }

  async connect(): Promise<unknown> {
    return this.redis.connect();
  }

  async close(): Promise<unknown> {
    return this.redis.quit();
  }

  destroy(): void {
    this.redis.disconnect();
  }

  on(event: string, listener: Listener): this {
    this.redis.on(event, listener);
    return this;
  }

  once(event: string, listener: Listener): this {
    this.redis.once(event, listener);
    return this;
  }

  off(event: string, listener: Listener): this {
    this.redis.off(event, listener);
    return this;
  }

  /** A rejection when the client cannot send now; undefined when it can. */
  private whenReady(): Promise<never> | undefined {
    const status = this.redis.status;
    if (status === 'ready') return undefined;
    return Promise.reject(new RedisClientNotReadyError(`the ioredis client is ${status}, not ready`));
  }
}

/** A command refused before it was sent: the client was not connected. */
class RedisClientNotReadyError extends Error {
  override readonly name = 'RedisClientNotReadyError';
}

/** A new client to the same servers as `client`, with `overrides`: on a Cluster, for each node connection too. */
function duplicateWith(client: IORedisClient, overrides: object, clusterOverrides: object = {}): IORedisClient {
  if (!client.isCluster) return client.duplicate(overrides);
  const redisOptions = (client.options as { redisOptions?: object }).redisOptions;
  return client.duplicate([], { ...overrides, ...clusterOverrides, redisOptions: { ...redisOptions, ...overrides } });
}

function toScore(reply: string | null): number | null {
  return reply === null ? null : Number(reply);
}

function fieldsToObject(fields: string[]): Record<string, string> {
  const message: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) message[fields[i]!] = fields[i + 1]!;
  return message;
}
