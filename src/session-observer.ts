import type { SessionEvent } from './session-event.js';

/**
 * Receives every session transition (the seed's `SessionObserverProtocol`).
 * Return a promise when the work is asynchronous: the call that caused the
 * event waits for it to settle.
 */
export interface SessionObserver {
  update(event: SessionEvent): void | Promise<void>;
}
