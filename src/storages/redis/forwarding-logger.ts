import type { SessionLogger } from '../../core/session-logger.js';

/**
 * The storage's logger as its parts hold it: `console` or the one given in
 * the options, until a subject attaches and, unless one was given, its logger
 * takes over. The parts keep this one object throughout.
 */
export class ForwardingLogger implements SessionLogger {
  constructor(public target: SessionLogger) {}

  warn(message: string): void {
    this.target.warn(message);
  }

  error(message: string, stack?: string): void {
    this.target.error(message, stack);
  }
}
