import type { SessionEvent, SessionEventsMissed, SessionObserver } from 'nestjs-mtproto-sessions';
import { Conditions } from './wait-until';

/** An observer that records what it receives and lets a test await a condition on it, never sleeping. */
export class EventLog implements SessionObserver {
  readonly events: SessionEvent[] = [];
  readonly missed: SessionEventsMissed[] = [];
  private readonly conditions = new Conditions();

  update(event: SessionEvent): void {
    this.events.push(event);
    this.conditions.wake();
  }

  eventsMissed(notice: SessionEventsMissed): void {
    this.missed.push(notice);
    this.conditions.wake();
  }

  /** `type:sessionId[@authKeyId][/reason]` per event, for readable assertions. */
  get lines(): string[] {
    return this.events.map(eventLine);
  }

  /** Resolves once `check()` holds; rejects after `timeoutMs` with what was seen, so a failure says why. */
  until(check: () => boolean, what: string, timeoutMs?: number): Promise<void> {
    return this.conditions.until(check, () => `${what}; saw ${this.events.length} events, ${this.missed.length} missed notices`, timeoutMs);
  }

  untilCount(count: number, timeoutMs?: number): Promise<void> {
    return this.until(() => this.events.length >= count, `${count} events`, timeoutMs);
  }
}

export function eventLine(event: SessionEvent): string {
  const scope = event.authKeyId === undefined ? '' : `@${event.authKeyId}`;
  const reason = event.reason === undefined || event.reason === 'destroyed' ? '' : `/${event.reason}`;
  return `${event.type}:${event.sessionId}${scope}${reason}`;
}
