import type { AuthKeyId, SessionId } from './session-id.js';

/** What happened to a session. */
export type SessionEventType = 'created' | 'destroyed';

/** Every {@link SessionEventType}, for validating input. */
export const SESSION_EVENT_TYPES: readonly SessionEventType[] = Object.freeze(['created', 'destroyed']);

/** Why a session went away: an explicit `destroySession`, or idle expiry. */
export type SessionEndReason = 'destroyed' | 'expired';

/** Optional details of a {@link SessionEvent}. */
export interface SessionEventDetails {
  /** Why a `destroyed` session went away; `'destroyed'` when omitted. Ignored for `created`. */
  reason?: SessionEndReason;
  /** The id of the storage instance (application instance) that made the transition. */
  origin?: string;
}

/** A session came into being or went away: what observers receive. */
export class SessionEvent {
  /** Present only for sessions scoped by an auth key. */
  // `declare`: a plain field would exist, as undefined, on every unscoped event.
  declare readonly authKeyId?: AuthKeyId;
  /** Present on `destroyed` events: why the session went away. */
  declare readonly reason?: SessionEndReason;
  /** Present when the storage names instances (shared storages): which one made the transition. */
  declare readonly origin?: string;

  constructor(
    readonly type: SessionEventType,
    readonly sessionId: SessionId,
    authKeyId?: AuthKeyId,
    details?: SessionEventDetails,
  ) {
    if (authKeyId !== undefined) this.authKeyId = authKeyId;
    if (type === 'destroyed') this.reason = details?.reason ?? 'destroyed';
    if (details?.origin !== undefined) this.origin = details.origin;
  }
}

/**
 * Events a storage should have announced but cannot: a shared log trimmed them
 * before this instance read them. Observers that keep per-session state should
 * treat it as stale and rebuild it (for example by checking `hasSession`).
 */
export class SessionEventsMissed {
  constructor(
    /** The last event this instance did receive (a storage-specific position), if any. */
    readonly lastSeen: string | undefined,
    /** The oldest event still available, from which delivery goes on. */
    readonly resumedFrom: string,
    /** Which storage instance noticed the gap. */
    readonly origin: string,
    /**
     * `'trimmed'`: the log dropped events before this instance read them.
     * `'lost'`: the store itself lost acknowledged history (a restart without
     * its data, a restore from an older snapshot, a failover to a replica that
     * lagged, a flush or a deleted key); `origin` is the instance that found
     * it, maybe another one.
     * `'diverged'`: this instance's copy of the sessions (a local replica) no
     * longer matched the store, which changed without an event (a key deleted
     * or evicted); the copy is rebuilt from the store.
     */
    readonly reason: SessionEventsMissedReason = 'trimmed',
  ) {}

  toString(): string {
    if (this.reason === 'diverged') {
      return `instance ${this.origin}'s copy of the sessions no longer matched the session store at ${this.resumedFrom} (changed without events); it is rebuilt from the store`;
    }
    if (this.reason === 'lost') {
      return `the session store lost acknowledged history after ${this.lastSeen ?? 'the start'} (found by instance ${this.origin}); sessions and events may be gone; delivery resumes from ${this.resumedFrom}`;
    }
    return `session events after ${this.lastSeen ?? 'the start'} were trimmed before instance ${this.origin} read them; delivery resumes from ${this.resumedFrom}`;
  }
}

/** Why a {@link SessionEventsMissed} notice was given. */
export type SessionEventsMissedReason = 'trimmed' | 'lost' | 'diverged';
