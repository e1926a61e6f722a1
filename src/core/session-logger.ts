/**
 * What the subject needs from a logger. Nest's `Logger` fits it, and so does
 * `console`, which is the default outside Nest.
 */
export interface SessionLogger {
  error(message: string, stack?: string): void;
  warn(message: string): void;
}

/** Throws a `TypeError` naming `what` unless `logger` has the `error` and `warn` methods of a {@link SessionLogger}. */
export function assertLogger(logger: unknown, what: string): asserts logger is SessionLogger {
  const given = logger as Partial<Record<'error' | 'warn', unknown>> | null;
  if (typeof given?.error !== 'function' || typeof given.warn !== 'function') {
    const got = logger === null ? 'null' : typeof logger === 'object' ? 'an object without them' : typeof logger;
    throw new TypeError(`${what} must have error(message) and warn(message) methods (a Nest Logger or console); got ${got}`);
  }
}

/**
 * A logger that forwards to `logger` and never throws: a report must not
 * break the path it reports on (an observer's failure, a storage's recovery).
 */
export function neverThrowing(logger: SessionLogger): SessionLogger {
  return {
    error(...args: Parameters<SessionLogger['error']>): void {
      try {
        logger.error(...args);
      } catch {
        // Nowhere left to report to.
      }
    },
    warn(message: string): void {
      try {
        logger.warn(message);
      } catch {
        // Nowhere left to report to.
      }
    },
  };
}
