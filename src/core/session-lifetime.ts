import { describeOptionValue } from './known-options.js';

/**
 * Lifetime policy shared by every storage the project ships.
 *
 * A session is kept for at least `idleTimeout` after it was last created or
 * found by `hasSession`. To keep `hasSession` from writing on every call, a
 * lookup only refreshes a deadline that has less than `idleTimeout` left, and
 * sets it to `idleTimeout + touchSlack` ahead; so a session expires between
 * `idleTimeout` and `idleTimeout + touchSlack` after its last use, and is
 * announced by the next sweep, at most `sweepInterval` later.
 */
export interface SessionLifetimeOptions {
  /** Milliseconds without `createSession`/`hasSession` after which a session is destroyed (reason `'expired'`). Off when omitted. */
  idleTimeout?: number;
  /** The most live sessions over all scopes; `createSession` past it rejects with `SessionLimitError`. Unbounded when omitted. */
  maxSessions?: number;
  /** How often expired sessions are swept and announced, in ms; `min(1000, max(10, idleTimeout / 8))` by default. */
  sweepInterval?: number;
  /** The clock deadlines are kept by, in ms; `Date.now` by default. Tests pass a manual one. */
  clock?: () => number;
}

/** The names of {@link SessionLifetimeOptions}, for the storages' checks of unknown options. */
export const LIFETIME_OPTIONS = ['idleTimeout', 'maxSessions', 'sweepInterval', 'clock'] as const;

/** {@link SessionLifetimeOptions} checked and with defaults filled in. */
export interface SessionLifetime {
  readonly idleTimeout: number | undefined;
  /** How far beyond `idleTimeout` a refreshed deadline is set, so lookups write at most once per slack. */
  readonly touchSlack: number;
  readonly maxSessions: number | undefined;
  readonly sweepInterval: number;
  readonly clock: () => number;
}

/** Checks lifetime options, throwing a `TypeError` that names the bad one. */
export function resolveLifetime(options: SessionLifetimeOptions, owner: string): SessionLifetime {
  const { idleTimeout, maxSessions, sweepInterval, clock } = options;
  if (idleTimeout !== undefined) assertPositiveInteger(idleTimeout, `${owner} idleTimeout (ms)`);
  if (maxSessions !== undefined) assertPositiveInteger(maxSessions, `${owner} maxSessions`);
  if (sweepInterval !== undefined) {
    assertPositiveInteger(sweepInterval, `${owner} sweepInterval (ms)`, MAX_TIMER_MS);
    if (idleTimeout === undefined) throw new TypeError(`${owner} sweepInterval has no effect without idleTimeout (nothing expires); give idleTimeout too, or leave sweepInterval out`);
  }
  if (clock !== undefined && typeof clock !== 'function') {
    throw new TypeError(`${owner} clock must be a function returning milliseconds; got ${typeof clock}`);
  }
  return {
    idleTimeout,
    touchSlack: idleTimeout === undefined ? 0 : Math.max(1, Math.floor(idleTimeout / 8)),
    maxSessions,
    sweepInterval: sweepInterval ?? (idleTimeout === undefined ? 1000 : Math.min(1000, Math.max(10, Math.floor(idleTimeout / 8)))),
    clock: clock ?? Date.now,
  };
}

/** The longest delay a Node timer keeps (2^31 - 1 ms, about 24.8 days); a longer one fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Throws a `TypeError` naming `what` unless `value` is a positive safe integer (of at most `max`, when given). */
export function assertPositiveInteger(value: unknown, what: string, max?: number): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0 || (max !== undefined && value > max)) {
    throw new TypeError(`${what} must be a positive integer${max === undefined ? '' : ` of at most ${max}`}; got ${describeOptionValue(value)}`);
  }
}
