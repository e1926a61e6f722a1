import type { SessionEvent, SessionEventsMissed } from './session-event.js';

/**
 * Receives every session transition, subscribed to a `SessionSubject`.
 * Return a promise when the work is asynchronous: the call that caused the
 * event waits for it to settle.
 */
export interface SessionObserver {
  update(event: SessionEvent): void | Promise<void>;
  /**
   * Optional: events were lost before this instance could deliver them (a
   * shared storage's log was trimmed while this instance lagged behind).
   * Per-session state kept from events may be stale.
   */
  eventsMissed?(notice: SessionEventsMissed): void | Promise<void>;
}
