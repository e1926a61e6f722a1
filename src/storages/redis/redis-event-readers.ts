import type { SessionLogger } from '../../core/session-logger.js';
import type { RedisConnection } from './redis-connection.js';
import { RedisEventReader } from './redis-event-reader.js';
import type { RedisSessionKeys } from './redis-keys.js';
import { RedisStreamCursor, type StreamListener } from './redis-stream-cursor.js';

const READ_BLOCK_MS = 1000;
/** Entries per stream per read, at most. */
const READ_BATCH = 1000;

export interface RedisEventReadersOptions {
  readonly instanceId: string;
  readonly commandTimeout: number;
  /** The streams' approximate MAXLEN, for the loss entries a reader records. */
  readonly streamMaxLength: number;
  readonly logger: SessionLogger;
  /** Readers start once it resolves (the key layout matches); never if it rejects. */
  readonly layoutChecked: Promise<void>;
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
export class RedisEventReaders {
  private readonly streams: { readonly keys: RedisSessionKeys; readonly cursor: RedisStreamCursor }[] = [];
  private readers: RedisEventReader[] | undefined;
  private closed = false;

  constructor(
    private readonly connection: RedisConnection,
    private readonly options: RedisEventReadersOptions,
  ) {}

  /** A group's stream, read once reading starts, its entries going to `listener`. */
  add(keys: RedisSessionKeys, listener: StreamListener): RedisStreamCursor {
    const cursor = new RedisStreamCursor(keys.events, this.options.instanceId, this.options.logger, listener);
    this.streams.push({ keys, cursor });
    return cursor;
  }

  get started(): boolean {
    return this.readers !== undefined;
  }

  /** Starts reading every group's stream, once; nothing after close(). */
  start(): void {
    if (this.readers !== undefined || this.closed) return;
    const { instanceId, commandTimeout, streamMaxLength, logger, layoutChecked } = this.options;
    const plan = this.connection.isCluster ? this.streams.map((stream) => [stream]) : [this.streams];
    const readers = plan.map((streams) => new RedisEventReader({
      cursors: streams.map((stream) => stream.cursor),
      logger,
      groups: streams.map((stream) => stream.keys),
      connection: this.connection,
      loss: { origin: instanceId, maxLength: streamMaxLength },
      blockMs: READ_BLOCK_MS,
      commandTimeout,
      batchSize: READ_BATCH,
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

  close(): void {
    this.closed = true;
    for (const reader of this.readers ?? []) reader.close();
  }
}
