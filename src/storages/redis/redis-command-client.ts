import { IORedisAdapter } from './ioredis-adapter.js';
import { isIORedisClient, type IORedisClient, type NodeRedisClient, type RedisCommands } from './redis-client.js';
import { connectionMessages } from './redis-storage.messages.js';
import { backoffDelay } from './backoff.js';

/** How the storage reaches Redis: a URL it connects to and owns, or a client the application owns. */
export type RedisConnectionSource = { readonly url: string } | { readonly client: NodeRedisClient | IORedisClient };

/** The storage's command client, from one of the three sources. */
export interface CommandClient {
  /** The client when it exists at once (a given one); a URL's waits for node-redis to load. */
  readonly client: RedisCommands | undefined;
  /** Resolves with the client once it exists; rejects if node-redis cannot be loaded. */
  readonly created: Promise<RedisCommands>;
  /** Whether the storage opened it, and so connects and closes it. */
  readonly owned: boolean;
  /** Whether the application connects it (a node-redis client it gave): its errors never fail waiting calls early. */
  readonly appConnects: boolean;
  /** Settles once it first connected; undefined when it is connected already. */
  readonly connected: Promise<void> | undefined;
  /** An owned client's first connect attempt, settled (never rejecting) once it connected or gave up; close() waits for it. */
  readonly connecting: Promise<void> | undefined;
}

/**
 * Builds the command client: from a URL (node-redis, loaded only here so an
 * app on ioredis needs no `redis` package; it fails calls at once while Redis
 * is away rather than queue them), from an application's ioredis client (a
 * connection of its own duplicated from it: see IORedisAdapter), or an
 * application's node-redis client (its own connection, never closed here).
 * `closed` says whether the storage closed before a URL's client loaded.
 */
export function openCommandClient(source: RedisConnectionSource, commandTimeout: number, closed: { readonly closed: boolean }): CommandClient {
  if ('client' in source && isIORedisClient(source.client)) {
    const client = IORedisAdapter.commandConnection(source.client);
    guardOwned(client, closed);
    // ioredis rejects connect() when its first attempt fails, then goes on retrying: calls wait for the first 'ready'.
    const connected = new Promise<void>((resolve) => client.once('ready', () => resolve()));
    const connecting = client.connect().then(() => undefined, () => undefined);
    return { client, created: Promise.resolve(client), owned: true, appConnects: false, connected, connecting };
  }
  if ('client' in source) {
    const given = source.client as unknown as RedisCommands;
    // The same connection, without node-redis's per-command timer (the storage bounds every call).
    const client = given.withCommandOptions({ timeout: 0 });
    const connected = given.isReady ? undefined : new Promise<void>((resolve) => given.once(readyEventOf(given), () => resolve()));
    return { client, created: Promise.resolve(client), owned: false, appConnects: true, connected, connecting: undefined };
  }
  const created = import('redis').then(
    ({ createClient }) => guardOwned(createClient({
      url: source.url,
      // While Redis is away, fail calls at once rather than queue them for later.
      disableOfflineQueue: true,
      socket: { connectTimeout: commandTimeout, reconnectStrategy: reconnectDelay },
      // The storage bounds every call; node-redis's own per-command timeout would cost an AbortSignal.timeout per command.
      commandOptions: { timeout: 0 },
    }) as unknown as RedisCommands, closed),
    (error: unknown) => {
      throw new Error(connectionMessages.nodeRedisMissing(error), { cause: error });
    },
  );
  const connected = created.then((client) => (closed.closed ? undefined : client.connect())).then(() => undefined);
  // The first connection's failure reaches callers through their own deadlines.
  connected.catch(() => undefined);
  return { client: undefined, created, owned: true, appConnects: false, connected, connecting: connected.catch(() => undefined) };
}

/**
 * What the storage does to every connection it opens, for the connection's
 * whole life. An 'error' without a listener is thrown by node-redis, which
 * kills a process, so one listener stays, also after close() (the outage log
 * listens apart, and stops on close). And a connection that comes up after
 * close() is dropped at once: node-redis does not abort a connect or a
 * reconnect in flight when closed, and would leave its socket open for good.
 */
export function guardOwned<C extends Pick<RedisCommands, 'on' | 'destroy'>>(client: C, closed: { readonly closed: boolean } | AbortSignal): C {
  client.on('error', ignore);
  const dropIfClosed = (): void => {
    if ('aborted' in closed ? closed.aborted : closed.closed) dropConnection(client);
  };
  client.on('connect', dropIfClosed);
  client.on('ready', dropIfClosed);
  return client;
}

/** Drops a connection at once; nothing to do when it never opened or is gone already. */
export function dropConnection(client: Pick<RedisCommands, 'destroy'>): void {
  try {
    client.destroy();
  } catch {
    // Never opened, or closed meanwhile.
  }
}

function ignore(): void {
  // Failures reach the storage's calls through their replies, and the outage log through its own listener.
}

/** A client emits 'ready' once connected; a node-redis Cluster emits 'connect' once it knows its slots, and never 'ready'. */
export function readyEventOf(client: RedisCommands): 'ready' | 'connect' {
  return 'masters' in client ? 'connect' : 'ready';
}

/** node-redis's reconnect strategy: backing off, with jitter so instances do not retry in step. */
function reconnectDelay(retries: number): number {
  return backoffDelay(retries, 50);
}
