import type { SessionEvent, SessionEventType } from '../core/session-event.js';
import type { SessionObserver } from '../core/session-observer.js';

/** Calls one `@OnSessionEvent()` method, for the event types it asked for. */
export class MethodSessionObserver implements SessionObserver {
  constructor(
    private readonly instance: object,
    private readonly className: string,
    private readonly methodName: string,
    /** `undefined` means every type. */
    private readonly types: ReadonlySet<SessionEventType> | undefined,
  ) {}

  update(event: SessionEvent): void | Promise<void> {
    if (this.types !== undefined && !this.types.has(event.type)) return;
    // Looked up on each call, so a method replaced after bootstrap (a spy, a patch) is the one called.
    const method = (this.instance as Record<string, (event: SessionEvent) => void | Promise<void>>)[this.methodName];
    return method.call(this.instance, event);
  }

  toString(): string {
    return `${this.className}.${this.methodName}`;
  }
}
