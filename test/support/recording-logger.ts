import type { LoggerService } from '@nestjs/common';
import { Conditions } from './wait-until';

export interface LogEntry {
  level: 'log' | 'error' | 'warn' | 'debug' | 'verbose' | 'fatal';
  message: string;
  context: unknown;
}

/**
 * The tests' one logger, for Nest and for the subject and storages alike:
 * keeps the test output quiet, records what was logged for a test to check,
 * and lets a test await a message instead of sleeping.
 */
export class RecordingLogger implements LoggerService {
  readonly entries: LogEntry[] = [];
  private readonly conditions = new Conditions();

  get errors(): string[] {
    return this.messages('error');
  }

  get warnings(): string[] {
    return this.messages('warn');
  }

  log(message: unknown, ...params: unknown[]): void {
    this.record('log', message, params);
  }
  error(message: unknown, ...params: unknown[]): void {
    this.record('error', message, params);
  }
  warn(message: unknown, ...params: unknown[]): void {
    this.record('warn', message, params);
  }
  debug(message: unknown, ...params: unknown[]): void {
    this.record('debug', message, params);
  }
  verbose(message: unknown, ...params: unknown[]): void {
    this.record('verbose', message, params);
  }
  fatal(message: unknown, ...params: unknown[]): void {
    this.record('fatal', message, params);
  }

  /** Resolves once a warning matches `pattern` (at once if one has); rejects after `timeoutMs` with the warnings seen. */
  untilWarning(pattern: RegExp, timeoutMs?: number): Promise<void> {
    return this.conditions.until(
      () => this.warnings.some((message) => pattern.test(message)),
      () => `a warning matching ${pattern}; got ${JSON.stringify(this.warnings)}`,
      timeoutMs,
    );
  }

  private messages(level: LogEntry['level']): string[] {
    return this.entries.filter((entry) => entry.level === level).map((entry) => entry.message);
  }

  private record(level: LogEntry['level'], message: unknown, params: unknown[]): void {
    // Nest's Logger passes its context as the last parameter.
    this.entries.push({ level, message: String(message), context: params.at(-1) });
    this.conditions.wake();
  }
}
