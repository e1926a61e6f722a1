import { parseDecimalId, type AuthKeyId, type SessionId } from '../../core/session-id.js';

export const DEFAULT_KEY_PREFIX = 'mtproto-sessions';

/** One key group's keys; their hash tag puts them in one Cluster slot, so one script can touch them all (no CROSSSLOT). */
export interface RedisSessionKeys {
  /** Sorted set: member = session, score = idle deadline in ms (or {@link NO_DEADLINE}). */
  readonly sessions: string;
  /** Stream of transitions, read by every instance. */
  readonly events: string;
  /** The sequence number of the last event appended; each entry carries its own, so a reader sees any it missed. */
  readonly sequence: string;
  /** With `shards` > 1 and `maxSessions`: how many sessions the group may hold, its share of the limit. */
  readonly quota: string;
  /**
   * With `shards` > 1 and `maxSessions`: the group's side of the quota ledger,
   * which transfers of quota it took part in and which ledger it takes them
   * from (see redis-session-quota.ts).
   */
  readonly grants: string;
  /** Hash interning instance ids as small codes, so stream entries stay short. */
  readonly origins: string;
  /**
   * How many times an instance found that Redis lost acknowledged history (the
   * sequence went back); each time it appends a loss entry, so that every
   * instance learns of it (see `RECORD_LOSS_SCRIPT`).
   */
  readonly epoch: string;
}

/** The keys of a prefix that describe it as a whole, under the prefix's own hash tag. */
export interface RedisLayoutKeys {
  /** Hash: the layout the prefix's data is written in (`layout`, `shards`, `maxSessions`). */
  readonly layout: string;
  /** With `shards` > 1 and `maxSessions`: the part of the limit no group holds yet. */
  readonly pool: string;
  /** With `shards` > 1 and `maxSessions`: the quota in flight between the pool and the groups, and the pool's state (see redis-session-quota.ts). */
  readonly ledger: string;
  /** The single group's keys of `shards: 1`, the layout of every version before `shards` existed. */
  readonly single: RedisSessionKeys;
}

/** Score of a session that never expires; a safe integer, so every Redis and Lua number keeps it exact. */
export const NO_DEADLINE = Number.MAX_SAFE_INTEGER;

/** With shards > 1, prefix p's key groups are tagged `p:g<index>:<n>` (see redis-key-routing.ts). */
const GROUP_TAG_SHAPE = /:g\d+:\d+$/;

export function checkPrefix(prefix: string): void {
  if (typeof prefix !== 'string' || prefix === '' || /[{}\s]/.test(prefix)) {
    throw new TypeError(`RedisSessionStorage keyPrefix must be a non-empty string without braces or spaces; got ${JSON.stringify(prefix)}`);
  }
  // A prefix of that shape would share the keys of another prefix's key group.
  if (GROUP_TAG_SHAPE.test(prefix)) {
    throw new TypeError(`RedisSessionStorage keyPrefix must not end in ":g<number>:<number>", the shape of another prefix's key-group tags `
      + `(${JSON.stringify(prefix.replace(GROUP_TAG_SHAPE, ''))} with shards > 1 uses {${prefix}}:sessions); got ${JSON.stringify(prefix)}`);
  }
}

/** A key group's keys under hash tag `tag`. */
export function keysTagged(tag: string): RedisSessionKeys {
  return { sessions: `{${tag}}:sessions`, events: `{${tag}}:events`, sequence: `{${tag}}:sequence`, quota: `{${tag}}:quota`, grants: `{${tag}}:grants`, origins: `{${tag}}:origins`, epoch: `{${tag}}:epoch` };
}

export function layoutKeys(prefix: string): RedisLayoutKeys {
  checkPrefix(prefix);
  return { layout: `{${prefix}}:layout`, pool: `{${prefix}}:pool`, ledger: `{${prefix}}:quota-ledger`, single: keysTagged(prefix) };
}

/**
 * A session's member in the sorted set: the decimal id, prefixed by the auth
 * key and a colon when scoped. Decimal keeps every bit of a signed 64-bit id
 * and lets the scripts split the member without bigint arithmetic.
 */
export function sessionMember(sessionId: SessionId, authKeyId: AuthKeyId | undefined): string {
  return authKeyId === undefined ? `${sessionId}` : `${authKeyId}:${sessionId}`;
}

/** A sorted-set member's ids (see sessionMember), or undefined for one that is not a member of ours. */
export function parseMember(member: string): [SessionId, AuthKeyId | undefined] | undefined {
  const sep = member.indexOf(':');
  const sessionId = parseDecimalId(sep < 0 ? member : member.slice(sep + 1));
  if (sessionId === undefined) return undefined;
  if (sep < 0) return [sessionId, undefined];
  const authKeyId = parseDecimalId(member.slice(0, sep));
  return authKeyId === undefined ? undefined : [sessionId, authKeyId];
}
