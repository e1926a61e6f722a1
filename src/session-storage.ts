import type { AuthKeyId, SessionId } from './session-id.js';

/**
 * Where sessions live (the seed's `SessionStorageProtocol`). Implement it to
 * keep sessions somewhere of your own, and check it with the conformance kit.
 *
 * Every method takes ids as `bigint` only and rejects anything else with
 * `InvalidSessionIdError`, changing nothing. A session is identified by the
 * pair (authKeyId, sessionId); without `authKeyId` a single global scope applies,
 * separate from every auth key's.
 *
 * Each method is atomic: of many concurrent `createSession` calls for one
 * session exactly one resolves `true`, and likewise for `destroySession`.
 */
export interface SessionStorage {
  /** Resolves `true` if the session is new, `false` if it already existed. */
  createSession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean>;

  /** Resolves whether the session exists. Runs on every incoming message. */
  hasSession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean>;

  /** Resolves `true` if the session existed and is now gone, `false` if there was nothing to destroy. */
  destroySession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean>;

  /** The number of live sessions over all scopes. */
  count?(): Promise<number>;

  /** Releases what the storage holds (connections, timers); called on application shutdown. */
  close?(): Promise<void> | void;
}
