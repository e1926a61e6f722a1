import type { SessionLogger } from '../../core/session-logger.js';
import { backoffDelay, sleep } from './backoff.js';
import type { Deadlines } from './deadlines.js';
import { bounded } from './redis-failures.js';
import type { RedisConnection } from './redis-connection.js';
import { RedisKeyLayoutError, SINGLE_UNRECORDED, type RecordedLayout } from './redis-key-layout-error.js';
import type { RedisLayoutKeys } from './redis-keys.js';
import { layoutMessages } from './redis-storage.messages.js';
import { layoutScript } from './scripts/layout.script.js';

/** The name of the key layout this version writes; a record naming another is refused. */
export const LAYOUT = 'groups-v1';

/**
 * Records the layout if none is, else checks it against `wanted`, retrying
 * (each try bounded, backing off) while Redis cannot be reached: calls wait
 * for it within their own deadlines. Rejects with RedisKeyLayoutError on a
 * mismatch, or with the last error once `closed` says the storage closed.
 */
export async function checkKeyLayout(
  connection: RedisConnection,
  deadlines: Deadlines,
  keys: RedisLayoutKeys,
  wanted: RecordedLayout,
  logger: SessionLogger,
  closed: { readonly closed: boolean },
): Promise<void> {
  let recorded: RecordedLayout | typeof SINGLE_UNRECORDED;
  for (let failures = 0; ; failures++) {
    try {
      recorded = await bounded(deadlines, connection.run(layoutScript, keys, wanted), 'ready');
      break;
    } catch (error) {
      if (closed.closed) throw error;
      // Calls wait for the check, within their own deadlines: say once why they do.
      if (failures === 0) logger.warn(layoutMessages.checkFailed(error));
      await sleep(backoffDelay(failures));
    }
  }
  if (recorded !== SINGLE_UNRECORDED && recorded.layout === wanted.layout && recorded.shards === wanted.shards && recorded.maxSessions === wanted.maxSessions) return;
  const prefix = keys.layout.slice(1, keys.layout.lastIndexOf('}'));
  throw new RedisKeyLayoutError(layoutMessages.mismatch(keys, wanted, recorded), prefix, wanted, recorded);
}
