import type { SessionLogger } from '../../core/session-logger.js';
import { describeError, toError } from '../../core/to-error.js';
import { entryTime, RedisStreamCursor, type Announced, type ReaderStream, type StreamEntry } from './redis-stream-cursor.js';

export type { Announced, ReaderStream, StreamEntry } from './redis-stream-cursor.js';

/** What the reader needs of its own dedicated connection, for its streams (by index). */
export interface ReaderConnection {
  /** Entries after each stream's position (one list per stream, in order; absent for none), or null when none came within `blockMs`. */
  read(positions: readonly string[], blockMs: number, count: number): Promise<(StreamEntry[] | undefined)[] | null>;
  /** A stream's last entry id ('0-0' when empty), its sequence number so far and its loss epoch, read together. */
  start(stream: number): Promise<{ position: string; sequence: bigint; epoch: bigint }>;
  /** Whether an entry follows `position` in a stream, the stream's last id, and its sequence number so far, read together. */
  after(stream: number, position: string): Promise<{ nextExists: boolean; lastId: string; sequence: bigint }>;
  /** The instance ids of a stream's origin codes (null where unknown), read together from its group's origins hash. */
  origins(stream: number, codes: string[]): Promise<(string | null)[]>;
  /** Appends a loss entry to a stream unless Redis holds an epoch newer than `epoch` (RECORD_LOSS_SCRIPT); resolves the epoch it then holds. */
  recordLoss(stream: number, epoch: bigint): Promise<{ recorded: boolean; epoch: bigint }>;
  /** Drops the connection at once (a read may be blocked on it). */
  destroy(): void;
}

export interface RedisEventReaderOptions {
  readonly instanceId: string;
  /** The streams read together, in one blocking read (on a Cluster, one stream per reader: their keys are in different slots). */
  readonly streams: readonly ReaderStream[];
  readonly logger: SessionLogger;
  /** Opens a fresh dedicated connection; called at start and after a connection is given up on. */
  readonly connect: () => Promise<ReaderConnection>;
  /** How long one blocking read waits for new entries. */
  readonly blockMs: number;
  /** How long past `blockMs` a read may take before its connection is declared dead. */
  readonly commandTimeout: number;
  /** Entries per stream per read, at most. */
  readonly batchSize: number;
}

const MAX_BACKOFF_MS = 1000;

/**
 * Reads transition streams from where it last was, on one dedicated
 * connection, and hands each stream's entries to its cursor, which announces
 * them in stream order per session. A connection that breaks is replaced and
 * reading resumes after the last entry seen in each stream; entries trimmed
 * meanwhile are reported, per stream, never skipped silently.
 */
export class RedisEventReader {
  /** Resolves once the reader knows where every stream ends, so no entry written after that can be missed. */
  readonly ready: Promise<void>;
  private markReady!: () => void;
  private readonly cursors: RedisStreamCursor[];
  private connection: ReaderConnection | undefined;
  private closed = false;
  private running: Promise<void> | undefined;
  /** When a read last left the reader at the streams' ends; undefined before the first read. */
  private caughtUpAt: number | undefined;
  private reading = false;
  /** Whether a read ever succeeded, so that the log tells "could not connect" from "lost its connection". */
  private everRead = false;

  constructor(private readonly options: RedisEventReaderOptions) {
    this.ready = new Promise((resolve) => (this.markReady = resolve));
    this.cursors = options.streams.map((stream) => new RedisStreamCursor(stream, options.instanceId, options.logger));
  }

  start(): void {
    this.running ??= this.run();
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
    for (const cursor of this.cursors) if (cursor.backlog) lag = Math.max(lag, now - entryTime(cursor.position));
    return lag;
  }

  /** Resolves once the entry `id` of stream `stream`, which this instance wrote, has been handed to the observers (see {@link RedisStreamCursor.announced}). */
  announced(stream: number, id: string): Promise<Announced> {
    return this.cursors[stream]!.announced(id);
  }

  /**
   * Stops reading at once. Not waiting for the loop: it may be inside a
   * connect or a backoff, and it announces nothing once closed; a connection
   * that arrives late is destroyed where it arrives.
   */
  close(): void {
    this.closed = true;
    this.connection?.destroy();
    this.connection = undefined;
    for (const cursor of this.cursors) cursor.close();
  }

  private async run(): Promise<void> {
    let failures = 0;
    let afterBreak = false;
    const cursors = this.cursors;
    while (!this.closed) {
      try {
        if (this.connection === undefined) {
          const connecting = this.options.connect();
          const connection = await this.withWatchdog(connecting, 'connect').catch((error: unknown) => {
            // A connection that arrives after the watchdog gave up on it is nobody's: close it.
            connecting.then((late) => late.destroy(), () => undefined);
            throw error;
          });
          if (this.closed) {
            connection.destroy();
            return;
          }
          this.connection = connection;
          for (const cursor of cursors) cursor.originNames.clear();
        }
        const connection = this.connection;
        if (cursors.some((cursor) => cursor.position === undefined)) {
          // Start at each stream's end as it is now: earlier transitions happened before this instance was there.
          await Promise.all(cursors.map(async (cursor, stream) => {
            if (cursor.position !== undefined) return;
            const start = await this.withWatchdog(connection.start(stream), 'reading the stream end');
            cursor.position = start.position;
            cursor.sequence = start.sequence;
            cursor.epoch = start.epoch;
          }));
          this.caughtUpAt = Date.now();
          this.markReady();
        } else if (afterBreak) {
          await Promise.all(cursors.map(async (cursor, stream) => {
            cursor.checkTail(await this.withWatchdog(connection.after(stream, cursor.position!), 'checking the stream after a break'));
          }));
        }
        afterBreak = false;
        await this.recordLosses(connection);
        this.reading = true;
        const read = await this.withWatchdog(
          connection.read(cursors.map((cursor) => cursor.position!), this.options.blockMs, this.options.batchSize),
          'read',
          this.options.blockMs,
        );
        if (this.closed) return;
        if (failures > 0) this.options.logger.warn(`Session event reader ${this.everRead ? 'reconnected' : 'connected'}; resuming after ${this.positions()}`);
        this.everRead = true;
        failures = 0;
        let backlog = false;
        for (let stream = 0; stream < cursors.length; stream++) {
          const cursor = cursors[stream]!;
          const entries = read?.[stream];
          cursor.backlog = entries !== undefined && entries.length >= this.options.batchSize;
          backlog ||= cursor.backlog;
          if (entries === undefined) continue;
          for (let i = 0; i < entries.length; i++) {
            const entry = entries[i]!;
            if (cursor.needsOrigins(entry)) {
              const codes = cursor.unknownOrigins(entries, i);
              cursor.learnOrigins(codes, await this.withWatchdog(connection.origins(stream, codes), 'reading origin codes'));
            }
            cursor.handle(entry);
          }
          cursor.tidy();
        }
        if (!backlog) this.caughtUpAt = Date.now();
      } catch (error) {
        if (this.closed) return;
        if (failures === 0) {
          // Where it resumes is said once, when it has: a check after the break may move the positions.
          this.options.logger.warn(
            this.everRead
              ? `Session event reader lost its Redis connection (${describeError(error)}); retrying`
              : `Session event reader could not connect to Redis (${describeError(error)}); retrying`,
          );
        }
        failures++;
        afterBreak = true;
        this.reading = false;
        this.connection?.destroy();
        this.connection = undefined;
        await delay(Math.min(MAX_BACKOFF_MS, 25 * 2 ** failures));
      }
    }
  }

  /** Tells the other instances, through each stream, of history Redis lost that this instance had read; retried after a reconnect until done. */
  private async recordLosses(connection: ReaderConnection): Promise<void> {
    for (let stream = 0; stream < this.cursors.length; stream++) {
      const cursor = this.cursors[stream]!;
      if (!cursor.lossToRecord) continue;
      const result = await this.withWatchdog(connection.recordLoss(stream, cursor.epoch), 'recording lost history');
      cursor.recordedLoss(result.epoch);
    }
  }

  /** Where reading resumes, for messages: `entry <id>` with one stream, `entry <id> of <stream>, ...` with several. */
  private positions(): string {
    if (this.cursors.length === 1) return `entry ${this.cursors[0]!.position ?? 'the stream end'}`;
    return this.cursors.map((cursor) => `entry ${cursor.position ?? 'the stream end'} of ${cursor.streamKey}`).join(', ');
  }

  /** Gives up on a connection that neither answers nor fails, which a silently dead socket would do. */
  private withWatchdog<T>(work: Promise<T>, what: string, extraMs = 0): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what} did not answer within ${extraMs + this.options.commandTimeout} ms`)), extraMs + this.options.commandTimeout);
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

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
