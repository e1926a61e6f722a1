import type { SessionLogger } from '../../core/session-logger.js';
import { toError } from '../../core/to-error.js';
import { backoffDelay, sleep } from './backoff.js';
import type { RedisConnection } from './redis-connection.js';
import type { RedisSessionKeys } from './redis-keys.js';
import { openReaderConnection, type ReaderConnection } from './redis-reader-connection.js';
import type { RedisStreamCursor } from './redis-stream-cursor.js';
import { entryTime } from './redis-stream-entry.js';
import { readerMessages } from './redis-storage.messages.js';

export interface RedisEventReaderOptions {
  /** The streams read together, in one blocking read (on a Cluster, one stream per reader: their keys are in different slots). */
  readonly cursors: readonly RedisStreamCursor[];
  /** The key groups of those streams, in the same order. */
  readonly groups: readonly RedisSessionKeys[];
  /** Whose client the reader's own connections are duplicated from. */
  readonly connection: RedisConnection;
  /** Who records loss entries, and the streams' approximate MAXLEN. */
  readonly loss: { readonly origin: string; readonly maxLength: number };
  readonly logger: SessionLogger;
  /** How long one blocking read waits for new entries. */
  readonly blockMs: number;
  /** How long past `blockMs` a read may take before its connection is declared dead. */
  readonly commandTimeout: number;
  /** Entries per stream per read, at most. */
  readonly batchSize: number;
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
  private running: Promise<void> | undefined;
  /** When a read last left the reader at the streams' ends; undefined before the first read. */
  private caughtUpAt: number | undefined;
  private reading = false;
  /** Whether a read ever succeeded, so that the log tells "could not connect" from "lost its connection". */
  private everRead = false;

  constructor(private readonly options: RedisEventReaderOptions) {}

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
    for (const cursor of this.options.cursors) if (cursor.backlog) lag = Math.max(lag, now - entryTime(cursor.position));
    return lag;
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
    for (const cursor of this.options.cursors) cursor.close();
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
        const read = await this.withWatchdog(
          connection.read(this.options.cursors.map((cursor) => cursor.position!), this.options.blockMs, this.options.batchSize),
          'read',
          this.options.blockMs,
        );
        if (this.closed) return;
        if (failures > 0) this.options.logger.warn(readerMessages.resumed(this.everRead, this.positions()));
        this.everRead = true;
        failures = 0;
        await this.handle(connection, read);
      } catch (error) {
        if (this.closed) return;
        // Where it resumes is said once, when it has: a check after the break may move the positions.
        if (failures === 0) this.options.logger.warn(readerMessages.broken(this.everRead, error));
        failures++;
        afterBreak = true;
        this.reading = false;
        this.connection?.destroy();
        this.connection = undefined;
        await sleep(backoffDelay(failures));
      }
    }
  }

  /** A fresh connection (the origin codes known are forgotten with the old one: a restarted Redis gives new codes); undefined once closed. */
  private async reconnect(): Promise<ReaderConnection | undefined> {
    const { connection: commands, groups, loss } = this.options;
    const connecting = commands.created.then((client) => openReaderConnection(client, groups, loss));
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
    for (const cursor of this.options.cursors) cursor.originNames.clear();
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
  private async handle(connection: ReaderConnection, read: Awaited<ReturnType<ReaderConnection['read']>>): Promise<void> {
    const cursors = this.options.cursors;
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
