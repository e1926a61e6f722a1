import type { SessionLifetime } from '../../core/session-lifetime.js';

/** Deadlines are kept in ticks of at least 1 ms, coarse enough that idleTimeout + touchSlack spans at most this many. */
export const DEADLINE_SPAN_TICKS = 2 ** 28;

/** Milliseconds per deadline tick under a lifetime policy (1 when sessions do not expire). */
export function tickLengthOf({ idleTimeout, touchSlack }: Pick<SessionLifetime, 'idleTimeout' | 'touchSlack'>): number {
  return idleTimeout === undefined ? 1 : Math.max(1, Math.ceil((idleTimeout + touchSlack) / DEADLINE_SPAN_TICKS));
}
