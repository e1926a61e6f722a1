import type { SessionEventsMissed } from '../core/session-event.js';
import type { SessionObserver } from '../core/session-observer.js';

/** Calls one `@OnSessionEventsMissed()` method; hears no session events. */
export class MethodEventsMissedObserver implements SessionObserver {
  constructor(
    private readonly instance: object,
    private readonly className: string,
    private readonly methodName: string,
  ) {}

  update(): void {
    // Only missed-events notices concern this method.
  }

  eventsMissed(notice: SessionEventsMissed): void | Promise<void> {
    // Looked up on each call, so a method replaced after bootstrap (a spy, a patch) is the one called.
    const method = (this.instance as Record<string, (notice: SessionEventsMissed) => void | Promise<void>>)[this.methodName];
    return method.call(this.instance, notice);
  }

  toString(): string {
    return `${this.className}.${this.methodName}`;
  }
}
