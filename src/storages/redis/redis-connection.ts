import type { SessionLogger } from '../../core/session-logger.js';
import { SessionStorageUnavailableError } from '../../core/session-storage-errors.js';
import { IORedisAdapter } from './ioredis-adapter.js';
import type { RedisCommands } from './redis-client.js';
import { dropConnection, openCommandClient, readyEventOf, type RedisConnectionSource } from './redis-command-client.js';
import { connectionMessages } from './redis-storage.messages.js';
import { settlesWithin } from './settles-within.js';
import { evalBySha, type AnyRedisScript, type RedisScript } from './scripts/define-script.js';

/**
 * The storage's command connection: the gate calls wait at until it first
 * connected (and whatever else they must wait for), the scripts it runs, and
 * the log of its outages, once when one starts and once when it ends.
 */
export class RedisConnection {
  /** Set in the constructor for a given client; for a URL, once node-redis has loaded (calls wait for the gate until then). */
  client!: RedisCommands;
  /** Resolves with {@link client} once it exists (rejects if node-redis cannot be loaded). */
  readonly created: Promise<RedisCommands>;
  private readonly owned: boolean;
  /** The first connect attempt of a client the storage opened, settled once it connected or gave up. */
  private readonly connecting: Promise<void> | undefined;
  /** Settles once the client first became ready (and whatever else calls must wait for); cleared once passed. */
  private gate: Promise<void> | undefined;
  /** Scripts whose source went over the current connection; a reconnect (maybe to a restarted server) clears it. */
  private readonly scriptsSent = new Set<AnyRedisScript>();
  /** Counts (re)connections: what was learnt of the server on an earlier one (its clock: RedisClock) may be of another server. */
  generation = 0;
  private readonly onConnected = (): void => {
    this.scriptsSent.clear();
    this.generation++;
  };
  /** The client whose events this connection follows. */
  private connectionEvents: RedisCommands | undefined;
  /** Read by the client builder: a URL's client that loads after close() is not connected. */
  private readonly state = { closed: false };
  /** What {@link connectionEvents} emits once connected (see readyEventOf). */
  private readyEvent = 'ready';
  private unavailableSince: number | undefined;
  /** Whether the command connection has ever been ready: until then a connection error fails waiting calls at once. */
  private everReady: boolean;
  /** Rejects, with the connection error as cause, the calls waiting for a first connection when an attempt fails; re-armed after each. */
  private firstConnectFailure = rejectable();
  /** Why the last attempt at a first connection failed; calls made meanwhile fail at once with it. */
  private connectError: SessionStorageUnavailableError | undefined;

  constructor(source: RedisConnectionSource, private readonly commandTimeout: number, private readonly logger: SessionLogger) {
    const opened = openCommandClient(source, commandTimeout, this.state);
    this.owned = opened.owned;
    this.connecting = opened.connecting;
    this.everReady = opened.appConnects;
    this.gate = opened.connected;
    if (opened.client !== undefined) {
      this.client = opened.client;
      // A given node-redis client's events are the app's client's; the storage's copy shares its connection.
      this.listen(opened.owned ? opened.client : (source as { client: RedisCommands }).client);
    }
    this.created = opened.created.then(
      (client) => {
        if (opened.client === undefined) {
          this.client = client;
          this.listen(client);
        }
        return client;
      },
      (error: unknown) => {
        this.logger.error((error as Error).message);
        throw error;
      },
    );
    this.created.catch(() => undefined);
  }

  /** Whether the command connection is up now. */
  get isReady(): boolean {
    return this.connectionEvents?.isReady ?? false;
  }

  /** Whether calls still wait for something (the first connect, a reader's start); the hot path skips the wait once not. */
  get waiting(): boolean {
    return this.gate !== undefined;
  }

  /** Whether the client is a Cluster client: its readers then read one key group each (a group's keys are in a slot of their own). */
  get isCluster(): boolean {
    // A URL gives a standalone client, which may not have loaded yet.
    if (this.client === undefined) return false;
    return this.client instanceof IORedisAdapter ? this.client.isCluster : 'masters' in this.client;
  }

  /** Makes later calls also wait for `ready` (a reader learning where the stream ends). */
  waitAlsoFor(ready: Promise<unknown>): void {
    this.gate = this.gate === undefined ? ready.then(() => undefined) : Promise.all([this.gate, ready]).then(() => undefined);
    // A gate that fails for good (a refused key layout) fails every call that waits on it; unwaited, it is no unhandled rejection.
    this.gate.catch(() => undefined);
  }

  /** Fails every call from now on with `error` (a layout found changed while running). */
  failForGood(error: Error): void {
    const failed = Promise.reject(error);
    failed.catch(() => undefined);
    this.gate = failed;
    this.everReady = true;
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

  /** Whether `which`'s source went over the current connection: a run of it goes by its hash. */
  hasSent<A, R, K>(which: RedisScript<A, R, K>): boolean {
    return this.scriptsSent.has(which as unknown as AnyRedisScript);
  }

  /**
   * Sends `which`'s source with `args` (a run that must change nothing), so
   * that its later runs go by its hash; its reply is not waited for. A
   * failure leaves it unsent.
   */
  load<A, R, K>(which: RedisScript<A, R, K>, keys: K, args: A): void {
    const script = which as unknown as AnyRedisScript;
    if (this.scriptsSent.has(script)) return;
    this.scriptsSent.add(script);
    const unsent = (): void => {
      this.scriptsSent.delete(script);
    };
    try {
      this.client.eval(which.source, { keys: which.keys(keys, args), arguments: which.args(args) }).catch(unsent);
    } catch {
      // node-redis throws synchronously on a closed client.
      unsent();
    }
  }

  /**
   * The first call of each script on a connection sends its source (EVAL),
   * later ones its hash (EVALSHA). Redis runs one connection's commands in
   * order, so by the time an EVALSHA runs, the EVAL before it has cached the
   * script. Relying on a NOSCRIPT retry instead would let a later call overtake
   * an earlier one: two calls on one session applied out of order.
   */
  run<A, R, K>(which: RedisScript<A, R, K>, keys: K, args: A): Promise<R> {
    const options = { keys: which.keys(keys, args), arguments: which.args(args) };
    const script = which as unknown as AnyRedisScript;
    if (!this.scriptsSent.has(script)) {
      this.scriptsSent.add(script);
      return this.client.eval(which.source, options).then(which.parse);
    }
    // NOSCRIPT is still possible after SCRIPT FLUSH or a Cluster slot moving to another node.
    return evalBySha(this.client, script, options, which.parse);
  }

  /**
   * Closes the client if the storage opened it, waiting up to `graceMs` for
   * replies in flight; a borrowed one stays open. Resolves once nothing the
   * storage opened is open: a first connect still in flight is waited for
   * (within commandTimeout, its connect timeout), and what it opens is
   * dropped as it comes up (see guardOwned).
   */
  async close(graceMs: number): Promise<void> {
    this.state.closed = true;
    this.unlisten();
    if (!this.owned) return;
    let client: RedisCommands;
    try {
      client = await this.created;
    } catch {
      // node-redis never loaded: nothing was opened.
      return;
    }
    this.unlisten();
    // A graceful close waits for the replies of commands in flight, which a stalled Redis never sends:
    // past the grace the connection is dropped instead. One not up yet has nothing in flight.
    if (!(graceMs > 0 && client.isReady && (await settlesWithin(client.close(), graceMs)))) dropConnection(client);
    if (this.connecting !== undefined) await settlesWithin(this.connecting, this.commandTimeout);
  }

  /** Follows the client's connection: a reconnect forgets the scripts sent; an outage is reported once when it starts and once when it ends. */
  private listen(client: RedisCommands): void {
    this.connectionEvents = client;
    this.readyEvent = readyEventOf(client);
    client.on(this.readyEvent, this.onConnected);
    client.on('error', this.reportError);
    client.on(this.readyEvent, this.reportReady);
  }

  private unlisten(): void {
    const events = this.connectionEvents;
    if (events === undefined) return;
    events.off(this.readyEvent, this.onConnected);
    events.off('error', this.reportError);
    events.off(this.readyEvent, this.reportReady);
  }

  private readonly reportError = (error: unknown): void => {
    if (!this.everReady) {
      const failure = this.firstConnectFailure;
      this.firstConnectFailure = rejectable();
      this.connectError = new SessionStorageUnavailableError(connectionMessages.couldNotConnect(error), { cause: error });
      failure.reject(this.connectError);
    }
    if (this.unavailableSince !== undefined) return;
    this.unavailableSince = Date.now();
    this.logger.warn(connectionMessages.outage(this.everReady, error));
  };

  private readonly reportReady = (): void => {
    const first = !this.everReady;
    this.everReady = true;
    this.connectError = undefined;
    if (this.unavailableSince === undefined) return;
    this.logger.warn(connectionMessages.back(first, Date.now() - this.unavailableSince));
    this.unavailableSince = undefined;
  };
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
