/**
 * What the quota scripts report first in their replies; their Lua is built
 * with these values, so both sides read the same names (see
 * redis-session-quota.ts for the design they serve).
 */
export const POOL_STATUS = {
  /** Done: quota taken, reclaims opened, a recount held or finished. */
  done: 1,
  /** The pool is empty (a take). */
  empty: 0,
  /** A recount holds the pool: no transfer starts until it is done (or its time is up). */
  frozen: -1,
  /** The pool was never counted, or its count is gone (a new prefix, data lost, an earlier version's data): recount first. */
  uncounted: -2,
  /** Past the call's fence: nothing changed. */
  fenced: -3,
  /** A recount's finish: transfers are still in flight, so the groups' quotas may still change. */
  busy: -4,
  /** A recount's finish: Redis records another layout (shards) for the prefix. */
  mismatch: -5,
} as const;

export type PoolStatus = (typeof POOL_STATUS)[keyof typeof POOL_STATUS];

/** What a key group says of one transfer of the ledger (quota-settle.script). */
export const TRANSFER = {
  /** Not decided yet: neither received nor refused, and its fence has not passed. */
  pending: -1,
  /** Refused for good: the group never received the grant, or never released for the reclaim. */
  none: 0,
  /** The group received the grant (its quota grew by the amount). */
  received: 1,
  /** The group released this amount for the reclaim (its quota shrank by it). */
  released: 2,
} as const;

export type TransferOutcome = (typeof TRANSFER)[keyof typeof TRANSFER];
