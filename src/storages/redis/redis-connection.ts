import type { SessionLogger } from '../../core/session-logger.js';
import { SessionStorageUnavailableError } from '../../core/session-storage-errors.js';
import { describeError } from '../../core/to-error.js';
import { IORedisAdapter } from './ioredis-adapter.js';
import { isIORedisClient, type IORedisClient, type NodeRedisClient, type RedisCommands } from './redis-client.js';
import type { ReaderConnection, StreamEntry } from './redis-event-reader.js';
import type { RedisSessionKeys } from './redis-keys.js';
import { readerAfterScript, readerStartScript, recordLossScript, type AnyRedisScript, type RedisScript } from './redis-scripts.js';

/** How the storage reaches Redis: a URL it connects to and owns, or a client the application owns. */
export type RedisConnectionSource = { readonly url: string } | { readonly client: NodeRedisClient | IORedisClient };

/**
 * The storage's command connection: an owned client (opened from a URL, or
 * duplicated from an application's ioredis client; reconnecting by itself,
 * failing calls at once while Redis is away) or a borrowed node-redis one
 * (never closed here). Runs scripts so that calls on one
 * connection keep their order, opens the readers' dedicated connections, and
 * reports an outage once when it starts and once when it ends.
 */
export class RedisConnection {
  /** Set in the constructor for a given client; for a URL, once node-redis has loaded (calls wait for the gate until then). */
  client!: RedisCommands;
  /** Resolves with {@link client} once it exists (rejects if node-redis cannot be loaded). */
  readonly created: Promise<RedisCommands>;
  private readonly owned: boolean;
  /** Settles once the client first became ready (and whatever else calls must wait for); cleared once passed. */
  private gate: Promise<void> | undefined;
  /** Scripts whose source went over the current connection; a reconnect (maybe to a restarted server) clears it. */
  private readonly scriptsSent = new Set<AnyRedisScript>();
  private readonly forgetSentScripts = (): void => this.scriptsSent.clear();
  /** The client whose 'ready' events clear {@link scriptsSent}. */
  private connectionEvents: RedisCommands | undefined;
  private closed = false;
  /** What {@link connectionEvents} emits once connected (see readyEventOf). */
  private readyEvent = 'ready';
  private unavailableSince: number | undefined;
  /** Whether the command connection has ever been ready: until then a connection error fails waiting calls at once. */
  private everReady = false;
  /** Rejects, with the connection error as cause, the calls waiting for a first connection when an attempt fails; re-armed after each. */
  private firstConnectFailure = rejectable();
  /** Why the last attempt at a first connection failed; calls made meanwhile fail at once with it. */
  private connectError: SessionStorageUnavailableError | undefined;

  constructor(source: RedisConnectionSource, commandTimeout: number, private readonly logger: () => SessionLogger) {
    if ('client' in source && isIORedisClient(source.client)) {
      // A connection of its own from the app's client: see IORedisAdapter for why not the app's connection itself.
      const client = IORedisAdapter.commandConnection(source.client);
      this.client = client;
      this.owned = true;
      this.listen(client);
      this.created = Promise.resolve(client);
      // ioredis rejects connect() when its first attempt fails, then goes on retrying: calls wait for the first 'ready'.
      this.gate = new Promise((resolve) => client.once('ready', () => resolve()));
      client.connect().catch(() => undefined);
    } else if ('client' in source) {
      const given = source.client as unknown as RedisCommands;
      // The same connection, without node-redis's per-command timer (Deadlines bounds every call).
      this.client = given.withCommandOptions({ timeout: 0 });
      this.owned = false;
      if (!given.isReady) this.gate = new Promise((resolve) => given.once(readyEventOf(given), () => resolve()));
      // The app connects its own client (a Cluster emits no 'ready' of its own), so its errors never fail waiting calls early.
      this.everReady = true;
      this.listen(given);
      this.created = Promise.resolve(this.client);
    } else {
      this.owned = true;
      // node-redis is loaded only here, so that an app on ioredis needs no `redis` package.
      this.created = import('redis').then(
        ({ createClient }) => {
          const client = createClient({
            url: source.url,
            // While Redis is away, fail calls at once rather than queue them for later.
            disableOfflineQueue: true,
            socket: { connectTimeout: commandTimeout, reconnectStrategy: reconnectDelay },
            // Deadlines bounds every call; node-redis's own per-command timeout would cost an AbortSignal.timeout per command.
            commandOptions: { timeout: 0 },
          }) as unknown as RedisCommands;
          this.client = client;
          this.listen(client);
          return client;
        },
        (error: unknown) => {
          const missing = new Error(`RedisSessionStorage({ url }) needs the optional peer \`redis\` (node-redis), which could not be loaded (${describeError(error)}); install it, or pass an ioredis or node-redis client as \`client\``, { cause: error });
          this.logger().error(missing.message);
          throw missing;
        },
      );
      const connected = this.created.then((client) => (this.closed ? undefined : client.connect())).then(() => undefined);
      // The first connection's failure reaches callers through their own deadlines.
      connected.catch(() => undefined);
      this.gate = connected;
    }
  }

  /** Whether the command connection is up now. */
  get isReady(): boolean {
    return this.connectionEvents?.isReady ?? false;
  }

  /** Whether calls still wait for something (the first connect, a reader's start); the hot path skips the wait once not. */
  get waiting(): boolean {
    return this.gate !== undefined;
  }

  /** Makes later calls also wait for `ready` (a reader learning where the stream ends). */
  waitAlsoFor(ready: Promise<void>): void {
    this.gate = this.gate === undefined ? ready : Promise.all([this.gate, ready]).then(() => undefined);
    // A gate that fails for good (a refused key layout) fails every call that waits on it; unwaited, it is no unhandled rejection.
    this.gate.catch(() => undefined);
  }

  /**
   * Runs `work` once the gates so far have passed, however many first
   * connection attempts fail meanwhile: for work that calls wait for (the
   * layout check), which must not fail for good because Redis was not up yet.
   */
  afterConnected<T>(work: () => Promise<T>): Promise<T> {
    const gate = this.gate;
    return gate === undefined ? work() : gate.then(work);
  }

  /** Runs `work` once every gate has passed; a synchronous throw (node-redis on a closed client) becomes a rejection. */
  afterReady<T>(work: () => Promise<T>): Promise<T> {
    const gate = this.gate;
    if (gate === undefined) {
      try {
        return work();
      } catch (error) {
        return Promise.reject(error);
      }
    }
    // Never connected: a failed attempt fails the call now, naming why, rather than at its deadline. The race is
    // before `work`, so a call told it failed never runs later.
    if (!this.everReady && this.connectError !== undefined) return Promise.reject(this.connectError);
    const passed = this.everReady ? gate : Promise.race([gate, this.firstConnectFailure.promise]);
    return passed.then(() => {
      if (this.gate === gate) this.gate = undefined;
      return work();
    });
  }

  /**
   * The first call of each script on a connection sends its source (EVAL),
   * later ones its hash (EVALSHA). Redis runs one connection's commands in
   * order, so by the time an EVALSHA runs, the EVAL before it has cached the
   * script. Relying on a NOSCRIPT retry instead would let a later call overtake
   * the retried one: two calls on one session applied out of order.
   */
  run<A, R, K>(which: RedisScript<A, R, K>, keys: K, args: A): Promise<R> {
    const options = { keys: which.keys(keys), arguments: which.args(args) };
    if (!this.scriptsSent.has(which as unknown as AnyRedisScript)) {
      this.scriptsSent.add(which as unknown as AnyRedisScript);
      return this.client.eval(which.source, options).then(which.parse);
    }
    // NOSCRIPT is still possible after SCRIPT FLUSH or a Cluster slot moving to another node.
    return runScript(this.client, which as unknown as AnyRedisScript, options).then(which.parse);
  }

  /** Whether the client is a Cluster client: its readers then read one key group each (a group's keys are in a slot of their own). */
  get isCluster(): boolean {
    // A URL gives a standalone client, which may not have loaded yet.
    if (this.client === undefined) return false;
    return this.client instanceof IORedisAdapter ? this.client.isCluster : 'masters' in this.client;
  }

  /** Opens a dedicated connection for an event reader of the given key groups' streams; `loss` is for the loss entries it records. */
  async openReader(groups: readonly RedisSessionKeys[], loss: { readonly origin: string; readonly maxLength: number }): Promise<ReaderConnection> {
    const client = await this.created;
    const connection = client.duplicate(readerOverrides(client));
    // Errors surface through the pending read; the reader reports them once per outage.
    connection.on('error', () => undefined);
    try {
      await connection.connect();
    } catch (error) {
      connection.destroy();
      throw error;
    }
    const script = <A, R>(which: RedisScript<A, R>, keys: RedisSessionKeys, args: A): Promise<R> =>
      runScript(connection, which as unknown as AnyRedisScript, { keys: which.keys(keys), arguments: which.args(args) }).then(which.parse);
    const streamIndex = new Map(groups.map((keys, index) => [keys.events, index]));
    return {
      read: async (positions, blockMs, count) => {
        const streams = groups.map((keys, index) => ({ key: keys.events, id: positions[index]! }));
        const reply = await connection.xRead(streams.length === 1 ? streams[0]! : streams, { BLOCK: blockMs, COUNT: count });
        return streamEntries(reply, streamIndex, groups.length);
      },
      start: (stream) => script(readerStartScript, groups[stream]!, undefined),
      after: (stream, position) => script(readerAfterScript, groups[stream]!, { position }),
      recordLoss: (stream, epoch) => script(recordLossScript, groups[stream]!, { epoch, origin: loss.origin, maxLength: loss.maxLength }),
      origins: async (stream, codes) => {
        const names = await connection.hmGet(groups[stream]!.origins, codes.map((code) => `c:${code}`));
        return names.map((name) => (typeof name === 'string' ? name : null));
      },
      destroy: () => {
        try {
          connection.destroy();
        } catch {
          // Already closed.
        }
      },
    };
  }

  /** Closes the client if the storage opened it, waiting up to `graceMs` for replies in flight; a borrowed one stays open. */
  async close(graceMs: number): Promise<void> {
    this.closed = true;
    const events = this.connectionEvents;
    if (events !== undefined) {
      events.off(this.readyEvent, this.forgetSentScripts);
      events.off('error', this.reportError);
      events.off(this.readyEvent, this.reportReady);
    }
    if (!this.owned) return;
    let client: RedisCommands;
    try {
      client = await this.created;
    } catch {
      // node-redis never loaded: nothing was opened.
      return;
    }
    client.off(this.readyEvent, this.forgetSentScripts);
    client.off('error', this.reportError);
    client.off(this.readyEvent, this.reportReady);
    // A graceful close waits for the replies of commands in flight, which a stalled Redis never sends:
    // past the grace the connection is dropped instead.
    if (graceMs > 0 && (await settlesWithin(client.close(), graceMs))) return;
    try {
      client.destroy();
    } catch {
      // Never opened, or closed meanwhile.
    }
  }

  /** Follows the client's connection: a reconnect forgets the scripts sent; an outage is reported once when it starts and once when it ends. */
  private listen(client: RedisCommands): void {
    this.connectionEvents = client;
    this.readyEvent = readyEventOf(client);
    client.on(this.readyEvent, this.forgetSentScripts);
    client.on('error', this.reportError);
    client.on(this.readyEvent, this.reportReady);
  }

  private readonly reportError = (error: unknown): void => {
    if (!this.everReady) {
      const failure = this.firstConnectFailure;
      this.firstConnectFailure = rejectable();
      this.connectError = new SessionStorageUnavailableError(`Redis session storage could not connect: ${describeError(error)}`, { cause: error });
      failure.reject(this.connectError);
    }
    if (this.unavailableSince !== undefined) return;
    this.unavailableSince = Date.now();
    this.logger().warn(this.everReady
      ? `Redis session storage lost its connection (${describeError(error)}); calls fail with SessionStorageUnavailableError until it is back`
      : `Redis session storage could not connect (${describeError(error)}); calls fail with SessionStorageUnavailableError until it does`);
  };

  private readonly reportReady = (): void => {
    const first = !this.everReady;
    this.everReady = true;
    this.connectError = undefined;
    if (this.unavailableSince === undefined) return;
    this.logger().warn(`Redis session storage ${first ? 'connected' : 'reconnected'} after ${Date.now() - this.unavailableSince} ms`);
    this.unavailableSince = undefined;
  };
}

/** A client emits 'ready' once connected; a node-redis Cluster emits 'connect' once it knows its slots, and never 'ready'. */
function readyEventOf(client: RedisCommands): 'ready' | 'connect' {
  return 'masters' in client ? 'connect' : 'ready';
}

/** Runs a script by its hash, loading it once if Redis does not know it (a new or restarted server). */
async function runScript(client: RedisCommands, which: AnyRedisScript, options: { keys: string[]; arguments: string[] }): Promise<unknown> {
  try {
    return await client.evalSha(which.sha1, options);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return client.eval(which.source, options);
  }
}

/**
 * The reader's own connection must not reconnect by itself: the reader
 * replaces a broken one, and one that kept retrying after the reader gave up
 * on it would linger (and, once Redis is back, stay connected for good).
 */
function readerOverrides(client: RedisCommands): object {
  const options = (client as { options?: { socket?: object; defaults?: { socket?: object } } }).options;
  // A cluster client (it has masters) configures its node connections under `defaults`.
  // Its blocking reads are bounded by the reader's own watchdog, not by a per-command timer.
  const commandOptions = { timeout: 0 };
  if ('masters' in client) {
    // A reader reads one key group, on one master: it connects to that one only, not to every master.
    return { commandOptions, minimizeConnections: true, defaults: { ...options?.defaults, socket: { ...options?.defaults?.socket, reconnectStrategy: false } } };
  }
  return { commandOptions, disableOfflineQueue: false, socket: { ...options?.socket, reconnectStrategy: false } };
}

/**
 * XREAD's reply as entries per stream (by index): node-redis gives
 * `[{ name, messages }]`, or a map by stream name under some type mappings.
 */
function streamEntries(reply: unknown, streamIndex: ReadonlyMap<string, number>, streams: number): (StreamEntry[] | undefined)[] | null {
  if (reply === null || reply === undefined) return null;
  const named: [unknown, unknown][] = Array.isArray(reply)
    ? reply.map((stream) => [(stream as { name?: unknown }).name, (stream as { messages?: unknown }).messages])
    : Object.entries(reply as Record<string, unknown>);
  const entries = new Array<StreamEntry[] | undefined>(streams);
  for (const [name, messages] of named) {
    // One stream read: its name needs no lookup.
    const index = streams === 1 ? 0 : streamIndex.get(String(name));
    if (index !== undefined && Array.isArray(messages)) entries[index] = messages as StreamEntry[];
  }
  return entries;
}

/** Quick first retries, then at most one attempt a second, with jitter so instances do not retry in step. */
function reconnectDelay(retries: number): number {
  return Math.min(1000, 20 * 2 ** retries) + Math.floor(Math.random() * 50);
}

/** Whether `work` fulfilled within `ms`; a rejection (closing a client that never connected, or lost Redis) counts as not. */
function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    work.then(
      () => {
        clearTimeout(timer);
        resolve(true);
      },
      () => {
        clearTimeout(timer);
        resolve(false);
      },
    );
  });
}

/** A promise that only ever rejects, when told to; unwaited, its rejection is no unhandled rejection. */
function rejectable(): { promise: Promise<never>; reject: (error: Error) => void } {
  let reject!: (error: Error) => void;
  const promise = new Promise<never>((_resolve, fail) => {
    reject = fail;
  });
  promise.catch(() => undefined);
  return { promise, reject };
}
