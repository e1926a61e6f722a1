import type { SessionLogger } from '../../core/session-logger.js';
import type { RedisConnection } from './redis-connection.js';
import { RedisEventReader } from './redis-event-reader.js';
import type { RedisKeyGroup } from './redis-key-group.js';

const READ_BLOCK_MS = 1000;
/** Entries per stream per read, at most. */
const READ_BATCH = 1000;

/**
 * The readers of a storage's key groups. On standalone Redis one reader reads
 * every group's stream with one blocking XREAD, on one connection: a burst of
 * events costs as few reads as with one group. On a Cluster each group has a
 * reader and a connection of its own, as a read of several keys must stay in
 * one slot; a master that is down then holds up only its own groups' readers.
 * Each group keeps its own position, sequence and gap detection (a cursor).
 */
export function startReaders(
  groups: readonly RedisKeyGroup[],
  settings: {
    readonly connection: RedisConnection;
    readonly instanceId: string;
    readonly commandTimeout: number;
    /** The streams' approximate MAXLEN, for the loss entries a reader records. */
    readonly streamMaxLength: number;
    readonly logger: SessionLogger;
    /** Readers start once it resolves (the key layout matches); never if it rejects. */
    readonly layoutChecked: Promise<void>;
    readonly closed: () => boolean;
  },
): RedisEventReader[] {
  const { connection, instanceId, commandTimeout, logger, streamMaxLength } = settings;
  const plan = connection.isCluster ? groups.map((group) => [group]) : [groups];
  return plan.map((read) => {
    const reader = new RedisEventReader({
      instanceId,
      streams: read.map((group) => group.readerStream()),
      logger,
      connect: () => connection.openReader(read.map((group) => group.keys), { origin: instanceId, maxLength: streamMaxLength }),
      blockMs: READ_BLOCK_MS,
      commandTimeout,
      batchSize: READ_BATCH,
    });
    read.forEach((group, stream) => group.useReader(reader, stream));
    settings.layoutChecked.then(() => {
      if (!settings.closed()) reader.start();
    }, () => undefined);
    return reader;
  });
}
