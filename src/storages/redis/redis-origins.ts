/* The bound of each key group's origins hash (see APPEND_PRELUDE, RedisVerifier, OriginNames). */

/**
 * How long an origin (an instance id in a group's origins hash) may be silent
 * (no heartbeat) before it is dropped. A live instance beats every
 * ORIGINS_TEND_MS, so only instances gone for good (or cut off from Redis
 * this long, which then write nothing either) are dropped; a reader behind
 * by less than this still resolves every code it meets. Long enough for that,
 * short enough that a fleet of pods with random ids keeps the hash to about
 * the instances of the last hour.
 */
export const ORIGIN_TTL_MS = 60 * 60_000;
/** How often an instance beats in each group's origins hash, and how often each hash is pruned, by whichever instance comes first. */
export const ORIGINS_TEND_MS = 60_000;
