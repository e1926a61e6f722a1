import type { AuthKeyId, SessionId } from 'nestjs-mtproto-sessions';

/** A session's ids as JSON sends them. */
export interface SessionJson {
  sessionId: string;
  authKeyId?: string;
}

/**
 * Ids go out as decimal strings: `JSON.stringify` throws on a `bigint`, and a
 * JSON number would lose the low bits of most 64-bit ids in a JS client.
 */
export function sessionJson(sessionId: SessionId, authKeyId?: AuthKeyId): SessionJson {
  return authKeyId === undefined ? { sessionId: String(sessionId) } : { sessionId: String(sessionId), authKeyId: String(authKeyId) };
}
