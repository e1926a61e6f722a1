import type { LoggerService } from '@nestjs/common';

export interface LogEntry {
  level: 'log' | 'error' | 'warn' | 'debug' | 'verbose' | 'fatal';
  message: string;
  context: unknown;
}

/** Keeps the test output quiet and lets a test check what the app logged. */
export class RecordingLogger implements LoggerService {
  readonly entries: LogEntry[] = [];

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

  private messages(level: LogEntry['level']): string[] {
    return this.entries.filter((entry) => entry.level === level).map((entry) => entry.message);
  }

  private record(level: LogEntry['level'], message: unknown, params: unknown[]): void {
    // Nest's Logger passes its context as the last parameter.
    this.entries.push({ level, message: String(message), context: params.at(-1) });
  }
}
