import type { SessionEvent, SessionEventsMissed, SessionObserver } from 'nestjs-mtproto-sessions';

/** An observer that records what it receives and lets a test await a condition on it, never sleeping. */
export class EventLog implements SessionObserver {
  readonly events: SessionEvent[] = [];
  readonly missed: SessionEventsMissed[] = [];
  private waiters: { check: () => boolean; resolve: () => void }[] = [];

  update(event: SessionEvent): void {
    this.events.push(event);
    this.wake();
  }

  eventsMissed(notice: SessionEventsMissed): void {
    this.missed.push(notice);
    this.wake();
  }

  /** `type:sessionId[@authKeyId][/reason]` per event, for readable assertions. */
  get lines(): string[] {
    return this.events.map(eventLine);
  }

  /** Resolves once `check()` holds; rejects after `timeoutMs` with what was seen, so a failure says why. */
  until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((waiter) => waiter.check !== check);
        reject(new Error(`Timed out after ${timeoutMs} ms waiting for ${what}; saw ${this.events.length} events, ${this.missed.length} missed notices`));
      }, timeoutMs);
      this.waiters.push({ check, resolve: () => { clearTimeout(timer); resolve(); } });
    });
  }

  untilCount(count: number, timeoutMs?: number): Promise<void> {
    return this.until(() => this.events.length >= count, `${count} events`, timeoutMs);
  }

  private wake(): void {
    const ready = this.waiters.filter((waiter) => waiter.check());
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((waiter) => !ready.includes(waiter));
    for (const waiter of ready) waiter.resolve();
  }
}

export function eventLine(event: SessionEvent): string {
  const scope = event.authKeyId === undefined ? '' : `@${event.authKeyId}`;
  const reason = event.reason === undefined || event.reason === 'destroyed' ? '' : `/${event.reason}`;
  return `${event.type}:${event.sessionId}${scope}${reason}`;
}
