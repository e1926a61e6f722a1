/**
 * What the subject needs from a logger. Nest's `Logger` fits it, and so does
 * `console`, which is the default outside Nest.
 */
export interface SessionLogger {
  error(message: string, stack?: string): void;
  warn(message: string): void;
}
