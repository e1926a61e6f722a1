import { checkIds, type AuthKeyId, type SessionId } from '../session-id.js';
import type { SessionStorage } from '../session-storage.js';

/**
 * The default storage: sessions in this process's memory. Each method does its
 * whole work synchronously before resolving, which makes it atomic.
 */
export class InMemorySessionStorage implements SessionStorage {
  private readonly unscoped = new Set<SessionId>();
  /** Sessions per auth key; a key with no sessions left is removed, so memory follows live sessions. */
  private readonly byAuthKey = new Map<AuthKeyId, Set<SessionId>>();
  private scopedCount = 0;

  async createSession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
    const invalid = checkIds(sessionId, authKeyId);
    if (invalid) throw invalid;
    if (authKeyId === undefined) return addNew(this.unscoped, sessionId);
    let sessions = this.byAuthKey.get(authKeyId);
    if (sessions === undefined) {
      sessions = new Set();
      this.byAuthKey.set(authKeyId, sessions);
    }
    if (!addNew(sessions, sessionId)) return false;
    this.scopedCount++;
    return true;
  }

  async hasSession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
    const invalid = checkIds(sessionId, authKeyId);
    if (invalid) throw invalid;
    if (authKeyId === undefined) return this.unscoped.has(sessionId);
    return this.byAuthKey.get(authKeyId)?.has(sessionId) ?? false;
  }

  async destroySession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
    const invalid = checkIds(sessionId, authKeyId);
    if (invalid) throw invalid;
    if (authKeyId === undefined) return this.unscoped.delete(sessionId);
    const sessions = this.byAuthKey.get(authKeyId);
    if (sessions === undefined || !sessions.delete(sessionId)) return false;
    if (sessions.size === 0) this.byAuthKey.delete(authKeyId);
    this.scopedCount--;
    return true;
  }

  async count(): Promise<number> {
    return this.unscoped.size + this.scopedCount;
  }
}

function addNew(sessions: Set<SessionId>, sessionId: SessionId): boolean {
  const before = sessions.size;
  sessions.add(sessionId);
  return sessions.size !== before;
}
