/**
 * A node-redis client the application already has: standalone (`createClient`)
 * or cluster (`createCluster`), with any modules. Described by the commands the
 * storage uses, so clients of every node-redis 5 and 6 flavour fit.
 */
export interface NodeRedisClient {
  evalSha(sha1: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  eval(source: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  zScore(key: string, member: string): Promise<unknown>;
  zCount(key: string, min: string, max: string): Promise<unknown>;
  zScan(key: string, cursor: string, options: { COUNT: number }): Promise<unknown>;
  hmGet(key: string, fields: string[]): Promise<unknown>;
  get(key: string): Promise<unknown>;
  zCard(key: string): Promise<unknown>;
  xRevRange(key: string, start: string, end: string, options: { COUNT: number }): Promise<unknown>;
  xRead(streams: { key: string; id: string } | { key: string; id: string }[], options: { BLOCK: number; COUNT: number }): Promise<unknown>;
  duplicate(overrides?: object): unknown;
  withCommandOptions(options: { timeout: number }): unknown;
  connect(): Promise<unknown>;
  close(): Promise<unknown>;
  destroy(): unknown;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  once(event: string, listener: (...args: unknown[]) => void): unknown;
  off(event: string, listener: (...args: unknown[]) => void): unknown;
  readonly isReady: boolean;
}

/** {@link NodeRedisClient} with the replies the storage relies on (internal). */
export interface RedisCommands extends NodeRedisClient {
  zScore(key: string, member: string): Promise<number | null>;
  zCount(key: string, min: string, max: string): Promise<number>;
  hmGet(key: string, fields: string[]): Promise<(string | null)[]>;
  get(key: string): Promise<string | null>;
  zCard(key: string): Promise<number>;
  xRevRange(key: string, start: string, end: string, options: { COUNT: number }): Promise<{ id: string }[]>;
  zScan(key: string, cursor: string, options: { COUNT: number }): Promise<{ cursor: string | number; members: { value: string; score: number }[] }>;
  duplicate(overrides?: object): RedisCommands;
  withCommandOptions(options: { timeout: number }): RedisCommands;
}

/**
 * An ioredis client the application already has: a `Redis` or a `Cluster`
 * (ioredis 5 or 6). Described by the commands the storage sends, so that
 * ioredis itself stays an optional peer; the storage wraps it in an adapter.
 */
export interface IORedisClient {
  evalsha(sha1: string, numKeys: number, ...keysAndArgs: string[]): Promise<unknown>;
  eval(script: string, numKeys: number, ...keysAndArgs: string[]): Promise<unknown>;
  zscore(key: string, member: string): Promise<string | null>;
  zcount(key: string, min: string, max: string): Promise<number>;
  zscan(key: string, cursor: string, countToken: 'COUNT', count: number): Promise<[cursor: string, elements: string[]]>;
  hmget(key: string, ...fields: string[]): Promise<(string | null)[]>;
  get(key: string): Promise<string | null>;
  zcard(key: string): Promise<number>;
  xrevrange(key: string, end: string, start: string, countToken: 'COUNT', count: number): Promise<[id: string, fields: string[]][]>;
  xread(
    countToken: 'COUNT', count: number, blockToken: 'BLOCK', milliseconds: number, streamsToken: 'STREAMS', ...keysThenIds: string[]
  ): Promise<[key: string, entries: [id: string, fields: string[]][]][] | null>;
  /** `Redis.duplicate(options)` or `Cluster.duplicate(startupNodes, options)`: the reader's own connection. */
  duplicate(first?: unknown, second?: unknown): IORedisClient;
  connect(): Promise<unknown>;
  quit(): Promise<unknown>;
  disconnect(): unknown;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  once(event: string, listener: (...args: unknown[]) => void): unknown;
  off(event: string, listener: (...args: unknown[]) => void): unknown;
  readonly status: string;
  readonly isCluster: boolean;
  readonly options: object;
}

/** Whether `client` is an ioredis `Redis` or `Cluster` (ioredis names its commands in lower case and has a `status`). */
export function isIORedisClient(client: unknown): client is IORedisClient {
  const candidate = client as Partial<Record<'evalsha' | 'duplicate' | 'status', unknown>> | null;
  return typeof candidate?.evalsha === 'function' && typeof candidate.duplicate === 'function' && typeof candidate.status === 'string';
}

/** Whether `client` looks like a node-redis client or cluster. */
export function isNodeRedisClient(client: unknown): client is NodeRedisClient {
  const candidate = client as Partial<Record<'evalSha' | 'withCommandOptions' | 'duplicate', unknown>> | null;
  return typeof candidate?.evalSha === 'function' && typeof candidate.withCommandOptions === 'function' && typeof candidate.duplicate === 'function';
}
