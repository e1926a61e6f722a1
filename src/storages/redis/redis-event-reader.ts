import type { SessionLogger } from '../../core/session-logger.js';
import { toError } from '../../core/to-error.js';
import { backoffDelay, sleep } from './backoff.js';
import type { RedisCommands } from './redis-client.js';
import type { RedisSessionKeys } from './redis-keys.js';
import { openReaderConnection, type ReaderConnection } from './redis-reader-connection.js';
import { RedisStreamCursor, type StreamListener, type StreamReading } from './redis-stream-cursor.js';
import { entryTime } from './redis-stream-entry.js';
import { readerMessages } from './redis-storage.messages.js';

/** How long a blocking read waits at most (less with a short maxStaleness): a healthy reader hears from Redis this often. */
const READ_BLOCK_MS = 1000;
/** Lease checks per maxStaleness: a lease lapses at most maxStaleness after the reader last heard from Redis. */
const LEASE_TICKS = 8;
/** Entries per stream per read, at most. */
const READ_BATCH = 1000;

/** What the readers need of the command connection: the client their own connections are duplicated from. */
export interface ReaderClientSource {
  /** Resolves with the command client once it exists. */
  readonly created: Promise<RedisCommands>;
  /** Whether it is a Cluster client (false while a URL's client loads: a URL gives a standalone one). */
  readonly isCluster: boolean;
}

export interface RedisEventReadersOptions {
  readonly instanceId: string;
  readonly commandTimeout: number;
  /** The streams' approximate MAXLEN, for the loss entries a reader records. */
  readonly streamMaxLength: number;
  readonly logger: SessionLogger;
  /** Readers start once it resolves (the key layout matches); never if it rejects. */
  readonly layoutChecked: Promise<void>;
  /** The replicas' lease after a reader last heard from Redis, ms (Infinity: no lease). */
  readonly maxStaleness: number;
}

/**
 * The readers of a storage's key groups, started once, when a subject
 * attaches or the replica is first asked. On standalone Redis one reader
 * reads every group's stream with one blocking XREAD, on one connection: a
 * burst of events costs as few reads as with one group. On a Cluster each
 * group has a reader and a connection of its own, as a read of several keys
 * must stay in one slot; a master that is down then holds up only its own
 * groups' readers. Each group keeps its own position, sequence and gap
 * detection (its cursor).
 */
export class RedisEventReaders implements StreamReading {
  private readonly streams: { readonly keys: RedisSessionKeys; readonly cursor: RedisStreamCursor }[] = [];
  private readers: RedisEventReader[] | undefined;
  private closed = false;

  constructor(
    private readonly source: ReaderClientSource,
    private readonly options: RedisEventReadersOptions,
  ) {}

  /** A group's stream, read once reading starts, its entries going to `listener`. */
  add(keys: RedisSessionKeys, listener: StreamListener): RedisStreamCursor {
    const cursor = new RedisStreamCursor(keys.events, this.options.instanceId, this.options.logger, listener, this);
    this.streams.push({ keys, cursor });
    return cursor;
  }

  get started(): boolean {
    return this.readers !== undefined;
  }

  /** Starts reading every group's stream, once; nothing after close(). */
  start(): void {
    if (this.readers !== undefined || this.closed) return;
    const { instanceId, commandTimeout, streamMaxLength, logger, layoutChecked, maxStaleness } = this.options;
    const plan = this.source.isCluster ? this.streams.map((stream) => [stream]) : [this.streams];
    const readers = plan.map((streams) => new RedisEventReader({
      cursors: streams.map((stream) => stream.cursor),
      groups: streams.map((stream) => stream.keys),
      source: this.source,
      loss: { origin: instanceId, maxLength: streamMaxLength },
      logger,
      // Half the lease at most: two reads of a healthy reader fit in one.
      blockMs: Math.min(READ_BLOCK_MS, Math.floor(maxStaleness / 2)),
      commandTimeout,
      batchSize: READ_BATCH,
      maxStaleness,
    }));
    this.readers = readers;
    layoutChecked.then(() => {
      if (!this.closed) for (const reader of readers) reader.start();
    }, () => undefined);
  }

  /** How far behind its stream's end the furthest behind reader is, in ms; undefined before any first read. */
  lag(): number | undefined {
    let lag: number | undefined;
    for (const reader of this.readers ?? []) {
      const readerLag = reader.lag();
      if (readerLag !== undefined) lag = Math.max(lag ?? 0, readerLag);
    }
    return lag;
  }

  /** Stops every reader; resolves once the connects they had in flight have settled, and what those opened is dropped. */
  close(): Promise<unknown> {
    this.closed = true;
    return Promise.all((this.readers ?? []).map((reader) => reader.close()));
  }
}

export interface RedisEventReaderOptions {
  /** The streams read together, in one blocking read (on a Cluster, one stream per reader: their keys are in different slots). */
  readonly cursors: readonly RedisStreamCursor[];
  /** The key groups of those streams, in the same order. */
  readonly groups: readonly RedisSessionKeys[];
  /** Whose client the reader's own connections are duplicated from. */
  readonly source: ReaderClientSource;
  /** Who records loss entries, and the streams' approximate MAXLEN. */
  readonly loss: { readonly origin: string; readonly maxLength: number };
  readonly logger: SessionLogger;
  /** How long one blocking read waits for new entries. */
  readonly blockMs: number;
  /** How long past `blockMs` a read may take before its connection is declared dead. */
  readonly commandTimeout: number;
  /** Entries per stream per read, at most. */
  readonly batchSize: number;
  /** The lease of its streams' replicas after it last heard from Redis, ms (Infinity: none). */
  readonly maxStaleness: number;
}

/**
 * Reads transition streams from where it last was, on one dedicated
 * connection of its own, and hands each stream's entries to its cursor. A
 * connection that breaks is replaced and reading resumes after the last entry
 * seen in each stream; entries trimmed meanwhile are reported, per stream,
 * never skipped silently.
 */
export class RedisEventReader {
  private connection: ReaderConnection | undefined;
  private closed = false;
  /** Aborted by close(): drops a connect in flight. */
  private readonly closing = new AbortController();
  private running: Promise<void> | undefined;
  /** When a read last left the reader at the streams' ends; undefined before the first read. */
  private caughtUpAt: number | undefined;
  private reading = false;
  /** The last connect started, settled (never rejecting) once it has; close() aborts it. */
  private connecting: Promise<void> | undefined;
  /** Whether a read ever succeeded, so that the log tells "could not connect" from "lost its connection". */
  private everRead = false;
  private leaseTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: RedisEventReaderOptions) {}

  start(): void {
    if (this.running !== undefined) return;
    this.running = this.run();
    const { maxStaleness, cursors } = this.options;
    if (maxStaleness === Infinity) return;
    const tick = Math.max(1, Math.floor(maxStaleness / LEASE_TICKS));
    // Lapsed one tick early, so that a lease never outlives maxStaleness.
    const lease = maxStaleness - tick;
    this.leaseTimer = setInterval(() => {
      const now = Date.now();
      for (const cursor of cursors) cursor.checkLease(now, lease);
    }, tick);
    this.leaseTimer.unref();
  }

  /**
   * How far behind its streams' ends this reader is, in ms: 0 while it reads
   * on a live connection at the end (its blocking read hears each entry at
   * once); the age of the oldest last-handled entry of the streams it works
   * through a backlog of; the time since it was last at the end while it has
   * no connection. Undefined until its first read.
   */
  lag(now = Date.now()): number | undefined {
    if (this.caughtUpAt === undefined) return undefined;
    if (!this.reading) return Math.max(0, now - this.caughtUpAt);
    let lag = 0;
    for (const cursor of this.options.cursors) if (cursor.backlog) lag = Math.max(lag, now - entryTime(cursor.position));
    return lag;
  }

  /**
   * Stops reading at once. Not waiting for the loop: it may be inside a
   * connect or a backoff, and it announces nothing once closed; a connection
   * that arrives late is destroyed where it arrives. Resolves once a connect
   * in flight has settled, and what it opened is gone.
   */
  close(): Promise<void> {
    this.closed = true;
    if (this.leaseTimer !== undefined) clearInterval(this.leaseTimer);
    for (const cursor of this.options.cursors) cursor.withinLease = false;
    this.closing.abort();
    this.connection?.destroy();
    this.connection = undefined;
    for (const cursor of this.options.cursors) cursor.close();
    return this.connecting ?? Promise.resolve();
  }

  private async run(): Promise<void> {
    let failures = 0;
    let afterBreak = false;
    while (!this.closed) {
      try {
        const connection = this.connection ?? (await this.reconnect());
        if (connection === undefined) return;
        await this.position(connection, afterBreak);
        afterBreak = false;
        await this.recordLosses(connection);
        this.reading = true;
        // One stream: while this instance's batches tell where it ends, a read would only bring their entries back.
        if (this.options.cursors.length === 1) await this.options.cursors[0]!.batches.readNeeded(this.options.blockMs);
        if (this.closed) return;
        const read = await this.withWatchdog(
          connection.read(this.options.cursors.map((cursor) => cursor.position!), this.options.blockMs, this.options.batchSize),
          'read',
          this.options.blockMs,
        );
        const repliedAt = Date.now();
        if (this.closed) return;
        if (failures > 0) this.options.logger.warn(readerMessages.resumed(this.everRead, this.positions()));
        this.everRead = true;
        failures = 0;
        await this.handle(connection, read, repliedAt);
      } catch (error) {
        if (this.closed) return;
        // Where it resumes is said once, when it has: a check after the break may move the positions.
        if (failures === 0) this.options.logger.warn(readerMessages.broken(this.everRead, error));
        failures++;
        afterBreak = true;
        this.reading = false;
        for (const cursor of this.options.cursors) cursor.live = false;
        this.connection?.destroy();
        this.connection = undefined;
        await sleep(backoffDelay(failures));
      }
    }
  }

  /** A fresh connection (the origin codes known are forgotten with the old one: a restarted Redis gives new codes); undefined once closed. */
  private async reconnect(): Promise<ReaderConnection | undefined> {
    const { source, groups, loss } = this.options;
    const connecting = source.created.then((client) => openReaderConnection(client, groups, loss, this.closing.signal));
    this.connecting = connecting.then(() => undefined, () => undefined);
    const connection = await this.withWatchdog(connecting, 'connect').catch((error: unknown) => {
      // A connection that arrives after the watchdog gave up on it is nobody's: close it.
      connecting.then((late) => late.destroy(), () => undefined);
      throw error;
    });
    if (this.closed) {
      connection.destroy();
      return undefined;
    }
    this.connection = connection;
    for (const cursor of this.options.cursors) cursor.originNames.forget();
    return connection;
  }

  /** Starts each stream at its end as it is now (earlier transitions happened before this instance was there), or checks it after a break. */
  private async position(connection: ReaderConnection, afterBreak: boolean): Promise<void> {
    const cursors = this.options.cursors;
    if (cursors.some((cursor) => cursor.position === undefined)) {
      await Promise.all(cursors.map(async (cursor, stream) => {
        if (cursor.position === undefined) cursor.start(await this.withWatchdog(connection.start(stream), 'reading the stream end'));
      }));
      this.caughtUpAt = Date.now();
    } else if (afterBreak) {
      await Promise.all(cursors.map(async (cursor, stream) => {
        cursor.checkTail(await this.withWatchdog(connection.after(stream, cursor.position!), 'checking the stream after a break'));
      }));
    }
  }

  /** Hands each stream's entries to its cursor, learning unknown origin codes first. */
  private async handle(connection: ReaderConnection, read: Awaited<ReturnType<ReaderConnection['read']>>, repliedAt: number): Promise<void> {
    const cursors = this.options.cursors;
    let backlog = false;
    for (let stream = 0; stream < cursors.length; stream++) {
      const cursor = cursors[stream]!;
      cursor.live = true;
      const entries = read?.[stream];
      cursor.backlog = entries !== undefined && entries.length >= this.options.batchSize;
      backlog ||= cursor.backlog;
      if (entries === undefined) continue;
      for (let i = 0; i < entries.length; i++) {
        const entry = entries[i]!;
        if (cursor.needsOrigins(entry)) {
          const codes = cursor.unknownOrigins(entries, i);
          cursor.originNames.learn(codes, await this.withWatchdog(connection.origins(stream, codes), 'reading origin codes'));
        }
        cursor.handle(entry);
      }
      cursor.tidy();
    }
    // The reply is as of when Redis sent it, before it arrived: each stream it left at the end is fresh as of then.
    for (const cursor of cursors) if (!cursor.backlog) cursor.heard(repliedAt);
    if (!backlog) this.caughtUpAt = Date.now();
  }

  /** Tells the other instances, through each stream, of history Redis lost that this instance had read; retried after a reconnect until done. */
  private async recordLosses(connection: ReaderConnection): Promise<void> {
    const cursors = this.options.cursors;
    for (let stream = 0; stream < cursors.length; stream++) {
      const cursor = cursors[stream]!;
      if (!cursor.lossToRecord) continue;
      const result = await this.withWatchdog(connection.recordLoss(stream, cursor.epoch), 'recording lost history');
      cursor.recordedLoss(result.epoch);
    }
  }

  /** Where reading resumes, for messages: `entry <id>` with one stream, `entry <id> of <stream>, ...` with several. */
  private positions(): string {
    const cursors = this.options.cursors;
    if (cursors.length === 1) return `entry ${cursors[0]!.position ?? 'the stream end'}`;
    return cursors.map((cursor) => `entry ${cursor.position ?? 'the stream end'} of ${cursor.streamKey}`).join(', ');
  }

  /** Gives up on a connection that neither answers nor fails, which a silently dead socket would do. */
  private withWatchdog<T>(work: Promise<T>, what: string, extraMs = 0): Promise<T> {
    const bound = extraMs + this.options.commandTimeout;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what} did not answer within ${bound} ms`)), bound);
      work.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(toError(error));
        },
      );
    });
  }
}
