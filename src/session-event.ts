import type { AuthKeyId, SessionId } from './session-id.js';

/** What happened to a session. */
export type SessionEventType = 'created' | 'destroyed';

/** Every {@link SessionEventType}, for validating input. */
export const SESSION_EVENT_TYPES: readonly SessionEventType[] = Object.freeze(['created', 'destroyed']);

/** A session came into being or went away (the seed's `SessionEvent`). */
export class SessionEvent {
  /** Present only for sessions scoped by an auth key. */
  // `declare`: a plain field would exist, as undefined, on every unscoped event.
  declare readonly authKeyId?: AuthKeyId;

  constructor(
    readonly type: SessionEventType,
    readonly sessionId: SessionId,
    authKeyId?: AuthKeyId,
  ) {
    if (authKeyId !== undefined) this.authKeyId = authKeyId;
  }
}
