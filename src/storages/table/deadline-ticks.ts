import type { SessionLifetime } from '../../core/session-lifetime.js';

/** Deadlines are kept in ticks of at least 1 ms, coarse enough that idleTimeout + touchSlack spans at most this many. */
export const DEADLINE_SPAN_TICKS = 2 ** 28;

/** Milliseconds per deadline tick under a lifetime policy (1 when sessions do not expire). */
export function tickLengthOf({ idleTimeout, touchSlack }: Pick<SessionLifetime, 'idleTimeout' | 'touchSlack'>): number {
  return idleTimeout === undefined ? 1 : Math.max(1, Math.ceil((idleTimeout + touchSlack) / DEADLINE_SPAN_TICKS));
}

/** The deadline of an empty slot: past every tick, so a sweep never takes it for a lapsed entry. */
export const EMPTY_SLOT_DEADLINE = 0xffffffff;

/** The time of the current operation, in ticks, shared by both tables of a storage. */
export class Ticks {
  /** The current tick. */
  now = 0;
  /** A touched session's deadline must be at least this (the tick of now + idleTimeout). */
  keep = 0;
  /** The deadline a created or refreshed session gets (the last tick before now + idleTimeout + touchSlack). */
  deadline = 0;
}
