import { createClient } from 'redis';
import { resolveInstanceId } from '../../core/instance-id.js';
import { checkIds, type AuthKeyId, type SessionId } from '../../core/session-id.js';
import { assertPositiveInteger, resolveLifetime, type SessionLifetime, type SessionLifetimeOptions } from '../../core/session-lifetime.js';
import type { SessionLogger } from '../../core/session-logger.js';
import { markChecksIds, type SessionStorage, type SessionTransitionSink } from '../../core/session-storage.js';
import { SessionLimitError, SessionStorageUnavailableError } from '../../core/session-storage-errors.js';
import { describeError } from '../../core/to-error.js';
import { Deadlines } from './deadlines.js';
import { RedisEventReader, type ReaderConnection, type StreamEntry } from './redis-event-reader.js';
import { DEFAULT_KEY_PREFIX, NO_DEADLINE, sessionKeys, sessionMember, type RedisSessionKeys } from './redis-keys.js';
import {
  CREATE_SCRIPT,
  DESTROY_SCRIPT,
  READER_AFTER_SCRIPT,
  READER_START_SCRIPT,
  SWEEP_SCRIPT,
  TOUCH_SCRIPT,
  script,
  type RedisScript,
} from './redis-scripts.js';

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
  xRead(stream: { key: string; id: string }, options: { BLOCK: number; COUNT: number }): Promise<unknown>;
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

export interface RedisSessionStorageOptions extends SessionLifetimeOptions {
  /** A Redis URL (`redis://127.0.0.1:6379`); the storage opens and owns its connections. Give this or `client`. */
  url?: string;
  /** A node-redis client, standalone or cluster, that the application owns; the storage never closes it. Give this or `url`. */
  client?: NodeRedisClient;
  /** Namespace for this application's keys, so several applications can share one Redis. Default `mtproto-sessions`. */
  keyPrefix?: string;
  /** Names this instance in the events it records; a random UUID by default. */
  instanceId?: string;
  /** Every call settles within this many ms, with `SessionStorageTimeoutError` if Redis does not answer. Default 2000. */
  commandTimeout?: number;
  /** About how many events the shared stream keeps for instances that fall behind (MAXLEN ~). Default 1,000,000. */
  streamMaxLength?: number;
  /** Where connection trouble is reported; the subject's logger once attached, else `console`. */
  logger?: SessionLogger;
}

/** {@link NodeRedisClient} with the replies the storage relies on. */
interface RedisCommands extends NodeRedisClient {
  zScore(key: string, member: string): Promise<number | null>;
  zCount(key: string, min: string, max: string): Promise<number>;
  duplicate(overrides?: object): RedisCommands;
  withCommandOptions(options: { timeout: number }): RedisCommands;
}

const DEFAULT_COMMAND_TIMEOUT = 2000;
const DEFAULT_STREAM_MAX_LENGTH = 1_000_000;
const READ_BLOCK_MS = 1000;
const READ_BATCH = 1000;
const SWEEP_BATCH = 1000;
/** Sweep batches per tick, so one tick never runs long; what is left waits for the next tick. */
const SWEEP_BATCHES_PER_TICK = 10;
const scripts = {
  create: script(CREATE_SCRIPT),
  destroy: script(DESTROY_SCRIPT),
  touch: script(TOUCH_SCRIPT),
  sweep: script(SWEEP_SCRIPT),
  readerStart: script(READER_START_SCRIPT),
  readerAfter: script(READER_AFTER_SCRIPT),
};

/**
 * Sessions in Redis (standalone or Cluster), shared by every application
 * instance that uses the same `keyPrefix`. Each transition is recorded with
 * its event in one script, and every instance reads the event stream, so each
 * instance's observers receive every transition exactly once, in order per
 * session, whichever instance made it.
 */
export class RedisSessionStorage implements SessionStorage {
  static {
    // Its hasSession checks ids itself, so SessionSubject forwards lookups without checking them again.
    markChecksIds(this.prototype.hasSession);
  }

  readonly instanceId: string;
  private readonly keys: RedisSessionKeys;
  private readonly client: RedisCommands;
  private readonly ownsClient: boolean;
  private readonly lifetime: SessionLifetime;
  private readonly deadlines: Deadlines;
  private readonly streamMaxLength: string;
  private logger: SessionLogger;
  private readonly explicitLogger: boolean;
  private reader: RedisEventReader | undefined;
  /** Settles once the client first became ready and the reader knows its start; calls wait for it (within their deadline). */
  private gate: Promise<void> | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping = false;
  private sweepFailing = false;
  /** Scripts whose source went over the current connection; a reconnect (maybe to a restarted server) clears it. */
  private readonly scriptsSent = new Set<RedisScript>();
  private readonly forgetSentScripts = (): void => this.scriptsSent.clear();
  /** The client whose 'ready' events clear {@link scriptsSent}. */
  private readonly connectionEvents: RedisCommands;
  private unavailableSince: number | undefined;
  private closing: Promise<void> | undefined;

  constructor(options: RedisSessionStorageOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('RedisSessionStorage takes an options object with url or client');
    if ((options.url === undefined) === (options.client === undefined)) {
      throw new TypeError('RedisSessionStorage needs exactly one of url or client');
    }
    if (options.url !== undefined && typeof options.url !== 'string') throw new TypeError(`RedisSessionStorage url must be a string; got ${typeof options.url}`);
    const commandTimeout = options.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT;
    assertPositiveInteger(commandTimeout, 'RedisSessionStorage commandTimeout (ms)');
    const streamMaxLength = options.streamMaxLength ?? DEFAULT_STREAM_MAX_LENGTH;
    assertPositiveInteger(streamMaxLength, 'RedisSessionStorage streamMaxLength');
    this.instanceId = resolveInstanceId(options.instanceId, 'RedisSessionStorage');
    this.lifetime = resolveLifetime(options, 'RedisSessionStorage');
    this.keys = sessionKeys(options.keyPrefix ?? DEFAULT_KEY_PREFIX);
    this.streamMaxLength = String(streamMaxLength);
    this.logger = options.logger ?? console;
    this.explicitLogger = options.logger !== undefined;
    this.deadlines = new Deadlines(commandTimeout);

    if (options.client !== undefined) {
      const given = options.client as unknown as RedisCommands;
      // The same connection, without node-redis's per-command timer (Deadlines bounds every call).
      this.client = given.withCommandOptions({ timeout: 0 });
      this.ownsClient = false;
      if (!given.isReady) this.gate = new Promise((resolve) => given.once('ready', () => resolve()));
      this.connectionEvents = given;
    } else {
      this.client = createClient({
        url: options.url,
        // While Redis is away, fail calls at once rather than queue them for later.
        disableOfflineQueue: true,
        socket: { connectTimeout: commandTimeout, reconnectStrategy: reconnectDelay },
        // Deadlines bounds every call; node-redis's own per-command timeout would cost an AbortSignal.timeout per command.
        commandOptions: { timeout: 0 },
      }) as unknown as RedisCommands;
      this.ownsClient = true;
      this.connectionEvents = this.client;
      this.watchConnection(this.client);
      const connected = this.client.connect().then(() => undefined);
      // The first connection's failure reaches callers through their own deadlines.
      connected.catch(() => undefined);
      this.gate = connected;
    }
    this.connectionEvents.on('ready', this.forgetSentScripts);
    if (this.lifetime.idleTimeout !== undefined) this.startSweeping();
  }

  /** The key prefix's sorted set and stream, for tools and tests. */
  get redisKeys(): RedisSessionKeys {
    return this.keys;
  }

  attach(sink: SessionTransitionSink): void {
    if (this.reader !== undefined) throw new TypeError('This RedisSessionStorage already announces to a SessionSubject; give each subject its own storage');
    if (!this.explicitLogger) this.logger = sink.logger;
    this.reader = new RedisEventReader({
      instanceId: this.instanceId,
      streamKey: this.keys.events,
      sink,
      logger: this.logger,
      connect: () => this.openReaderConnection(),
      blockMs: READ_BLOCK_MS,
      commandTimeout: this.deadlines.timeout,
      batchSize: READ_BATCH,
    });
    this.reader.start();
    const readerReady = this.reader.ready;
    this.gate = this.gate === undefined ? readerReady : Promise.all([this.gate, readerReady]).then(() => undefined);
  }

  createSession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
    const invalid = checkIds(sessionId, authKeyId);
    if (invalid) return Promise.reject(invalid);
    const now = this.lifetime.clock();
    const deadline = this.lifetime.idleTimeout === undefined ? NO_DEADLINE : now + this.lifetime.idleTimeout + this.lifetime.touchSlack;
    const work = this.afterReady(() => this.run(scripts.create, [
      sessionMember(sessionId, authKeyId), this.instanceId, String(now), String(deadline),
      String(this.lifetime.maxSessions ?? 0), this.streamMaxLength,
    ])).then((reply) => this.settleTransition(reply, 'createSession'));
    return this.bounded(work, 'createSession');
  }

  hasSession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
    const invalid = checkIds(sessionId, authKeyId);
    if (invalid) return Promise.reject(invalid);
    const member = sessionMember(sessionId, authKeyId);
    if (this.lifetime.idleTimeout !== undefined) {
      const now = this.lifetime.clock();
      const live = this.afterReady(() => this.run(scripts.touch, [
        member, String(now), String(this.lifetime.idleTimeout), String(now + this.lifetime.idleTimeout! + this.lifetime.touchSlack),
      ]));
      return this.deadlines.bound(live, 'hasSession', this.describeHasFailure, isOne);
    }
    // The hot path: once ready, no closure and no promise beyond the command's and the bound's.
    let score: Promise<number | null>;
    if (this.gate === undefined) {
      try {
        score = this.client.zScore(this.keys.sessions, member);
      } catch (error) {
        // node-redis throws synchronously on a closed client.
        score = Promise.reject(error);
      }
    } else {
      score = this.afterReady(() => this.client.zScore(this.keys.sessions, member));
    }
    return this.deadlines.bound(score, 'hasSession', this.describeHasFailure, isPresent);
  }

  destroySession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
    const invalid = checkIds(sessionId, authKeyId);
    if (invalid) return Promise.reject(invalid);
    const work = this.afterReady(() => this.run(scripts.destroy, [
      sessionMember(sessionId, authKeyId), this.instanceId, String(this.lifetime.clock()), this.streamMaxLength,
    ])).then((reply) => this.settleTransition(reply, 'destroySession'));
    return this.bounded(work, 'destroySession');
  }

  /** Live sessions over all scopes (those whose deadline has not passed). O(log n) in Redis. */
  count(): Promise<number> {
    const work = this.afterReady(() => this.client.zCount(this.keys.sessions, `(${this.lifetime.clock()}`, '+inf'));
    return this.bounded(work, 'count');
  }

  /**
   * Expires every session whose idle deadline has passed, now, and resolves
   * with how many expired once their events have been announced here. The
   * storage does this by itself every `sweepInterval`; tests call it with a
   * manual clock.
   */
  async expireIdleSessions(): Promise<number> {
    let expired = 0;
    for (;;) {
      const ids = await this.sweepBatch();
      expired += ids.length;
      if (ids.length < SWEEP_BATCH) return expired;
    }
  }

  /**
   * Resolves once the storage is connected and, when attached, its reader knows
   * where the stream ends, so every later transition reaches this instance.
   * Rejects with `SessionStorageTimeoutError` after `commandTimeout`.
   */
  ready(): Promise<void> {
    return this.bounded(this.afterReady(() => Promise.resolve()), 'ready');
  }

  /** Resolves once Redis answers a command on this storage's keys, for readiness checks; rejects with `SessionStorageUnavailableError` otherwise. */
  async ping(): Promise<void> {
    await this.bounded(this.afterReady(() => this.client.zCount(this.keys.sessions, '-inf', '-inf')), 'ping');
  }

  /** Stops the reader and the sweeps and closes the connections the storage opened; a client given to it stays open. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    this.deadlines.close();
    this.reader?.close();
    this.connectionEvents.off('ready', this.forgetSentScripts);
    if (!this.ownsClient) return;
    try {
      await this.client.close();
    } catch {
      // Closing a client that never connected, or lost Redis, has nothing left to release.
      this.client.destroy();
    }
  }

  /** Maps a script's {status, event ids...} reply to the call's result, after this instance has announced those events. */
  private async settleTransition(reply: unknown, operation: string): Promise<boolean> {
    if (!Array.isArray(reply) || typeof reply[0] !== 'number') {
      throw new SessionStorageUnavailableError(`Redis answered ${operation} with ${JSON.stringify(reply)}, not a transition result`);
    }
    const [status, ...eventIds] = reply as [number, ...string[]];
    await this.announced(eventIds);
    if (status === -1) throw new SessionLimitError(this.lifetime.maxSessions!);
    return status === 1;
  }

  private async sweepBatch(): Promise<string[]> {
    const reply = await this.bounded(this.afterReady(() => this.run(scripts.sweep, [
      String(this.lifetime.clock()), String(SWEEP_BATCH), this.instanceId, this.streamMaxLength,
    ])), 'expireIdleSessions');
    const ids = Array.isArray(reply) ? (reply as string[]) : [];
    await this.announced(ids);
    return ids;
  }

  /** Waits until this instance's reader has announced the entries this instance just wrote (once attached). */
  private async announced(eventIds: readonly string[]): Promise<void> {
    if (this.reader === undefined) return;
    for (const id of eventIds) await this.reader.delivered(id);
  }

  private startSweeping(): void {
    this.sweepTimer = setInterval(() => {
      if (this.sweeping) return;
      this.sweeping = true;
      this.sweepTick().then(
        () => {
          this.sweeping = false;
          this.sweepFailing = false;
        },
        (error: unknown) => {
          this.sweeping = false;
          // Once per outage, not once per tick.
          if (!this.sweepFailing) this.logger.warn(`Sweeping expired sessions failed, will retry every sweep: ${describeError(error)}`);
          this.sweepFailing = true;
        },
      );
    }, this.lifetime.sweepInterval);
    this.sweepTimer.unref();
  }

  private async sweepTick(): Promise<void> {
    for (let batch = 0; batch < SWEEP_BATCHES_PER_TICK; batch++) {
      if ((await this.sweepBatch()).length < SWEEP_BATCH) return;
    }
  }

  /**
   * The first call of each script on a connection sends its source (EVAL),
   * later ones its hash (EVALSHA). Redis runs one connection's commands in
   * order, so by the time an EVALSHA runs, the EVAL before it has cached the
   * script. Relying on a NOSCRIPT retry instead would let a later call overtake
   * the retried one: two calls on one session applied out of order.
   */
  private run(which: RedisScript, args: string[]): Promise<unknown> {
    const options = { keys: [this.keys.sessions, this.keys.events, this.keys.sequence], arguments: args };
    if (!this.scriptsSent.has(which)) {
      this.scriptsSent.add(which);
      return this.client.eval(which.source, options);
    }
    // NOSCRIPT is still possible after SCRIPT FLUSH or a Cluster slot moving to another node.
    return runScript(this.client, which, options.keys, args);
  }

  private afterReady<T>(work: () => Promise<T>): Promise<T> {
    const gate = this.gate;
    if (gate === undefined) {
      try {
        return work();
      } catch (error) {
        // node-redis throws synchronously on a closed client; that too must become a rejection.
        return Promise.reject(error);
      }
    }
    return gate.then(() => {
      if (this.gate === gate) this.gate = undefined;
      return work();
    });
  }

  private readonly describeHasFailure = (error: unknown): Error => this.describeFailure(error, 'hasSession');

  private bounded<T>(work: Promise<T>, operation: string): Promise<T> {
    return this.deadlines.bound(work, operation, (error) => this.describeFailure(error, operation));
  }

  private describeFailure(error: unknown, operation: string): Error {
    if (error instanceof SessionLimitError || error instanceof SessionStorageUnavailableError) return error;
    return new SessionStorageUnavailableError(`Redis could not complete ${operation}: ${describeError(error)}`, { cause: error });
  }

  private async openReaderConnection(): Promise<ReaderConnection> {
    const connection = this.client.duplicate(readerOverrides(this.client));
    // Errors surface through the pending read; the reader reports them once per outage.
    connection.on('error', () => undefined);
    try {
      await connection.connect();
    } catch (error) {
      connection.destroy();
      throw error;
    }
    const { events, sequence } = this.keys;
    return {
      read: async (position, blockMs, count) => {
        const reply = await connection.xRead({ key: events, id: position }, { BLOCK: blockMs, COUNT: count });
        return streamEntries(reply);
      },
      start: async () => {
        const [position, last] = await runScript(connection, scripts.readerStart, [events, sequence], []) as [string, string];
        return { position, sequence: BigInt(last) };
      },
      after: async (position) => {
        const [nextExists, lastId, last] = await runScript(connection, scripts.readerAfter, [events, sequence], [position]) as [number, string, string];
        return { nextExists: nextExists === 1, lastId, sequence: BigInt(last) };
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

  /** Reports an outage once when it starts and once when it ends, not on every reconnect attempt. */
  private watchConnection(client: RedisCommands): void {
    client.on('error', (error: unknown) => {
      if (this.unavailableSince !== undefined) return;
      this.unavailableSince = Date.now();
      this.logger.warn(`Redis session storage lost its connection (${describeError(error)}); calls fail with SessionStorageUnavailableError until it is back`);
    });
    client.on('ready', () => {
      if (this.unavailableSince === undefined) return;
      this.logger.warn(`Redis session storage reconnected after ${Date.now() - this.unavailableSince} ms`);
      this.unavailableSince = undefined;
    });
  }
}

function isPresent(score: number | null): boolean {
  return score !== null;
}

function isOne(reply: unknown): boolean {
  return reply === 1;
}

/** Runs a script by its hash, loading it once if Redis does not know it (a new or restarted server). */
async function runScript(client: RedisCommands, which: RedisScript, keys: string[], args: string[]): Promise<unknown> {
  const options = { keys, arguments: args };
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
    return { commandOptions, defaults: { ...options?.defaults, socket: { ...options?.defaults?.socket, reconnectStrategy: false } } };
  }
  return { commandOptions, disableOfflineQueue: false, socket: { ...options?.socket, reconnectStrategy: false } };
}

/** XREAD's reply as entries: node-redis gives `[{ name, messages }]`, or a map by stream name under some type mappings. */
function streamEntries(reply: unknown): StreamEntry[] | null {
  if (reply === null || reply === undefined) return null;
  const streams: unknown[] = Array.isArray(reply) ? reply : Object.values(reply as Record<string, unknown>).map((messages) => ({ messages }));
  const entries: StreamEntry[] = [];
  for (const stream of streams) {
    for (const message of (stream as { messages?: unknown[] }).messages ?? []) entries.push(message as StreamEntry);
  }
  return entries;
}

/** Quick first retries, then at most one attempt a second, with jitter so instances do not retry in step. */
function reconnectDelay(retries: number): number {
  return Math.min(1000, 20 * 2 ** retries) + Math.floor(Math.random() * 50);
}

