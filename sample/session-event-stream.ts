import { Injectable, type BeforeApplicationShutdown, type MessageEvent } from '@nestjs/common';
import { OnSessionEvent, type SessionEvent } from 'nestjs-mtproto-sessions';
import { Subject, type Observable } from 'rxjs';
import { sessionJson, type SessionJson } from './session-json.js';

/** What each server-sent event carries in its `data`. */
export interface SessionEventJson extends SessionJson {
  type: SessionEvent['type'];
  /** On `destroyed`: `destroyed` or `expired`. */
  reason?: SessionEvent['reason'];
  /** The instance that made the change (with several instances on one Redis). */
  origin?: string;
}

/**
 * Republishes session events as an rxjs stream for `GET /sessions/events`.
 * `@OnSessionEvent()` subscribes it to the `SessionSubject` at bootstrap; no
 * manual `subscribe()` is needed.
 */
@Injectable()
export class SessionEventStream implements BeforeApplicationShutdown {
  // A hot Subject: each client sees the events from the moment it connects.
  private readonly subject = new Subject<MessageEvent>();

  /** Every later session event, as a server-sent event. */
  readonly events$: Observable<MessageEvent> = this.subject.asObservable();

  @OnSessionEvent()
  publish(event: SessionEvent): void {
    const data: SessionEventJson = { type: event.type, ...sessionJson(event.sessionId, event.authKeyId), reason: event.reason, origin: event.origin };
    this.subject.next({ data });
  }

  /**
   * Completing the stream ends every open SSE response, so the HTTP server,
   * closed right after this hook, is not kept waiting by clients that never hang up.
   */
  beforeApplicationShutdown(): void {
    this.subject.complete();
  }
}
