/** Small helpers the suites share. */
import type { SessionLogger } from '../src/index.js';

/** A logger that keeps what it is told, so a suite can fail when something was logged. */
export class RecordingLogger implements SessionLogger {
  readonly messages: string[] = [];

  error(message: string): void {
    this.messages.push(message);
  }

  warn(message: string): void {
    this.messages.push(message);
  }

  /** Throws when anything was logged: a figure measured while observers fail would mean nothing. */
  assertQuiet(what: string): void {
    if (this.messages.length > 0) throw new Error(`${what} logged ${this.messages.length} message(s), first: ${this.messages[0]}`);
  }
}

/** Throws unless `actual === expected`: every timed loop checks its results, so that it measures what it claims. */
export function expectEqual(actual: unknown, expected: unknown, what: string): void {
  if (actual !== expected) throw new Error(`${what}: expected ${String(expected)}, got ${String(actual)}`);
}

/** `10^6`-style text for a size, as figure labels show it. */
export function sizeText(n: number): string {
  const exponent = Math.log10(n);
  if (Number.isInteger(exponent) && exponent >= 3) return `10^${exponent}`;
  return n.toLocaleString('en-US');
}
