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
  zScan(key: string, cursor: string, options: { COUNT: number }): Promise<{ cursor: string | number; members: { value: string; score: number }[] }>;
  duplicate(overrides?: object): RedisCommands;
  withCommandOptions(options: { timeout: number }): RedisCommands;
}
