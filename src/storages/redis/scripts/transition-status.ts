/**
 * What a transition script reports first in its reply; the Lua of the
 * scripts is built with these values, so both sides read the same names.
 */
export const TRANSITION = {
  /** The session was created, or destroyed. */
  done: 1,
  /** Nothing to do: it existed already, or there was nothing to destroy. */
  unchanged: 0,
  /** Refused: the group holds `maxSessions` sessions (one key group). */
  limitReached: -1,
  /** Refused: the group's quota is used up; take more from the pool (several key groups). */
  quotaUsedUp: -2,
  /** Refused: Redis's clock is past the call's fence, so its caller may have been told it failed (RedisClock). */
  fenced: -3,
} as const;

export type TransitionStatus = (typeof TRANSITION)[keyof typeof TRANSITION];

const STATUSES: ReadonlySet<unknown> = new Set(Object.values(TRANSITION));

export function isTransitionStatus(value: unknown): value is TransitionStatus {
  return STATUSES.has(value);
}

/** The limit argument of the create script: no limit, or the group's quota key holds it (else a positive maximum). */
export const LIMIT = { none: 0, quotaKey: -1 } as const;
