/** A prefix's layout as recorded in Redis. */
export interface RecordedLayout {
  readonly layout: string;
  readonly shards: number;
  readonly maxSessions: number;
}

/** What Redis holds when one-group data has no record of its layout (written by a version before layouts were recorded). */
export const SINGLE_UNRECORDED = 'single-unrecorded';

/**
 * The data under a key prefix is laid out differently from what this storage
 * was configured with (another `shards`, another `maxSessions` with several
 * groups, or one-group data written before layouts were recorded). Refused at
 * `ready()`, and every call rejects with it: nothing is read or written in the
 * wrong layout, so nothing is lost or hidden.
 */
export class RedisKeyLayoutError extends Error {
  override readonly name = 'RedisKeyLayoutError';

  constructor(
    message: string,
    readonly keyPrefix: string,
    /** What this storage was configured with. */
    readonly configured: RecordedLayout,
    /** What Redis holds; 'single-unrecorded' for one-group data with no layout record. */
    readonly recorded: RecordedLayout | typeof SINGLE_UNRECORDED,
  ) {
    super(message);
  }
}
