import { assertKnownOptions, describeOptionValue } from './known-options.js';
import { assertLogger, type SessionLogger } from './session-logger.js';

export interface SessionSubjectOptions {
  /** Where observer failures are reported; `console` by default. The Nest module passes Nest's `Logger`. */
  logger?: SessionLogger;
  /**
   * Called before each notification until it returns `true`. A framework that
   * discovers observers lazily subscribes the ones that exist so far here, so
   * that an event raised before its own wiring step still reaches them; it
   * returns `true` once every observer is subscribed.
   */
  prepareObservers?: () => boolean;
  /**
   * How long, in ms, a call, `drain()` and `close()` wait for an observer to
   * settle its handling of one event; 5000 by default. One that has not
   * settled by then is logged by name as a failure and no longer waited for;
   * whatever it does later is ignored.
   */
  observerTimeout?: number;
}

/**
 * Long enough for an observer that does its own I/O within the usual client
 * timeouts (a database round trip, a Redis call bounded at 2 s), short enough
 * that a hung one delays a client's request by seconds, not minutes, and that
 * shutdown fits well inside a 30 s grace period (Kubernetes' default).
 */
export const DEFAULT_OBSERVER_TIMEOUT = 5000;
/** setInterval's largest delay; a longer bound would fire at once. */
const MAX_OBSERVER_TIMEOUT = 2 ** 31 - 1;

/** Throws a `TypeError` naming the option unless `options` are {@link SessionSubjectOptions}. */
export function assertSubjectOptions(options: unknown): asserts options is SessionSubjectOptions {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`SessionSubject options must be an object; got ${options === null ? 'null' : typeof options}`);
  }
  assertKnownOptions(options, ['logger', 'observerTimeout', 'prepareObservers'], 'SessionSubject');
  const { logger, prepareObservers, observerTimeout } = options as Record<string, unknown>;
  if (logger !== undefined) assertLogger(logger, 'SessionSubject logger');
  if (prepareObservers !== undefined && typeof prepareObservers !== 'function') {
    throw new TypeError(`SessionSubject prepareObservers must be a function; got ${typeof prepareObservers}`);
  }
  if (observerTimeout !== undefined) assertObserverTimeout(observerTimeout, 'SessionSubject observerTimeout (ms)');
}

/** Throws a `TypeError` naming `what` unless `value` is a timeout setInterval can keep: a positive integer up to 2^31 - 1. */
export function assertObserverTimeout(value: unknown, what: string): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0 || value > MAX_OBSERVER_TIMEOUT) {
    throw new TypeError(`${what} must be a positive integer of at most ${MAX_OBSERVER_TIMEOUT}; got ${describeOptionValue(value)}`);
  }
}
