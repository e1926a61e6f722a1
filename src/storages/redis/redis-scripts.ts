import { createHash } from 'node:crypto';
import { SessionStorageUnavailableError } from '../../core/session-storage-errors.js';
import { NO_DEADLINE, type RedisSessionKeys } from './redis-keys.js';

/**
 * Each transition changes the sorted set and appends its event to the stream
 * in one script, so a crash can never leave one without the other. Redis does
 * not roll back a script that fails midway, so each script first reads the
 * sorted set (failing before any write if the key is of the wrong type), then
 * appends the event (failing before the change if the stream key is), and
 * changes the set last.
 *
 * KEYS: [sessions, events, sequence]. Stream fields: t = c (created) |
 * d (destroyed) | x (expired), s = session id, a = auth key id (scoped
 * sessions only), o = origin instance id, n = sequence number (one more than
 * the entry before it, so a reader can tell when entries were trimmed unread),
 * e = the idle deadline in ms (created entries of expiring sessions only, for
 * the readers' replicas).
 * The sequence is read before and written after the XADD, so a failing XADD
 * leaves no hole in it.
 */
const APPEND_EVENT = `
local function append(kind, member, origin, maxlen, deadline)
  local n = (tonumber(redis.call('GET', KEYS[3])) or 0) + 1
  local sep = string.find(member, ':', 1, true)
  local xadd = {'XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*', 't', kind}
  if sep then
    xadd[9], xadd[10], xadd[11], xadd[12] = 's', string.sub(member, sep + 1), 'a', string.sub(member, 1, sep - 1)
  else
    xadd[9], xadd[10] = 's', member
  end
  local at = #xadd
  xadd[at + 1], xadd[at + 2], xadd[at + 3], xadd[at + 4] = 'o', origin, 'n', n
  if deadline then xadd[at + 5], xadd[at + 6] = 'e', deadline end
  local id = redis.call(unpack(xadd))
  redis.call('SET', KEYS[3], n)
  return id
end
local function expire_lapsed(now, limit, origin, maxlen, ids)
  local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)
  for _, member in ipairs(lapsed) do
    ids[#ids + 1] = append('x', member, origin, maxlen)
    redis.call('ZREM', KEYS[1], member)
  end
  return #lapsed
end
`;

/**
 * ARGV: member, origin, now, deadline, maxSessions (0: none), maxlen,
 * deadline to record in the entry ('' for none).
 * Returns {status, event ids...}: status 1 created, 0 existed, -1 limit reached.
 * A lapsed session is expired (and announced) first, then created anew.
 */
const CREATE_SCRIPT = `${APPEND_EVENT}
local member, origin, now, maxlen = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[6]
local ids = {}
local score = redis.call('ZSCORE', KEYS[1], member)
if score then
  if tonumber(score) > now then return {0} end
  ids[#ids + 1] = append('x', member, origin, maxlen)
  redis.call('ZREM', KEYS[1], member)
end
local max = tonumber(ARGV[5])
if max > 0 and redis.call('ZCARD', KEYS[1]) >= max then
  expire_lapsed(now, 100, origin, maxlen, ids)
  if redis.call('ZCARD', KEYS[1]) >= max then
    table.insert(ids, 1, -1)
    return ids
  end
end
ids[#ids + 1] = append('c', member, origin, maxlen, ARGV[7] ~= '' and ARGV[7] or nil)
redis.call('ZADD', KEYS[1], ARGV[4], member)
table.insert(ids, 1, 1)
return ids
`;

/**
 * ARGV: member, origin, now, maxlen. Returns {status, event ids...}: status 1
 * destroyed, 0 nothing to destroy (a lapsed session is expired and announced instead).
 */
const DESTROY_SCRIPT = `${APPEND_EVENT}
local member, origin, now, maxlen = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local score = redis.call('ZSCORE', KEYS[1], member)
if not score then return {0} end
local lapsed = tonumber(score) <= now
local id = append(lapsed and 'x' or 'd', member, origin, maxlen)
redis.call('ZREM', KEYS[1], member)
if lapsed then return {0, id} end
return {1, id}
`;

/**
 * Lookup with a bounded touch: the deadline is rewritten only when less than
 * idleTimeout is left, so a busy session costs one write per touch slack.
 * ARGV: member, now, idleTimeout, new deadline. Returns the session's deadline
 * after the touch if live, else 0.
 */
const TOUCH_SCRIPT = `
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then return 0 end
local deadline, now = tonumber(score), tonumber(ARGV[2])
if deadline <= now then return 0 end
if deadline - now < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], 'XX', ARGV[4], ARGV[1])
  return tonumber(ARGV[4])
end
return deadline
`;

/**
 * The touches a replica sends in the background, many sessions at once.
 * ARGV: now, idleTimeout, new deadline, members... Returns each member's
 * deadline after the touch, or 0 where it is not live.
 */
const TOUCH_MANY_SCRIPT = `
local now, idle, fresh = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local deadlines = {}
for i = 4, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  local deadline = score and tonumber(score) or 0
  if deadline <= now then
    deadline = 0
  elseif deadline - now < idle then
    redis.call('ZADD', KEYS[1], 'XX', fresh, ARGV[i])
    deadline = tonumber(fresh)
  end
  deadlines[#deadlines + 1] = deadline
end
return deadlines
`;

/**
 * Where a reader starts: the last entry's id ('0-0' for an empty stream)
 * and the sequence number so far, read together. KEYS: [events, sequence].
 */
const READER_START_SCRIPT = `
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
return {last[1] and last[1][1] or '0-0', redis.call('GET', KEYS[2]) or '0'}
`;

/**
 * What a reader back from a break needs, read together: whether an entry
 * follows its position (ARGV[1]), the last entry's id, and the sequence so far.
 * KEYS: [events, sequence].
 */
const READER_AFTER_SCRIPT = `
local next = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', 1)
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
return {next[1] and 1 or 0, last[1] and last[1][1] or '0-0', redis.call('GET', KEYS[2]) or '0'}
`;

/** ARGV: now, batch, origin, maxlen. Expires up to batch lapsed sessions; returns their event ids. */
const SWEEP_SCRIPT = `${APPEND_EVENT}
local ids = {}
expire_lapsed(tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4], ids)
return ids
`;

/**
 * A script with its typed boundary (as node-redis's `defineScript`): which
 * keys of a key group it takes, its arguments built from named fields next to
 * the source that reads them, and its reply parsed into a typed result.
 */
export interface RedisScript<A, R> {
  /** For error messages: what the script does. */
  readonly name: string;
  readonly source: string;
  readonly sha1: string;
  keys(keys: RedisSessionKeys): string[];
  args(args: A): string[];
  /** Throws `SessionStorageUnavailableError` on a reply of the wrong shape. */
  parse(reply: unknown): R;
}

function defineScript<A, R>(definition: Omit<RedisScript<A, R>, 'sha1'>): RedisScript<A, R> {
  return { ...definition, sha1: createHash('sha1').update(definition.source).digest('hex') };
}

function badReply(name: string, reply: unknown): SessionStorageUnavailableError {
  return new SessionStorageUnavailableError(`Redis answered ${name} with ${JSON.stringify(reply)}, not the reply its script gives`);
}

const transitionKeys = (keys: RedisSessionKeys): string[] => [keys.sessions, keys.events, keys.sequence];
const readerKeys = (keys: RedisSessionKeys): string[] => [keys.events, keys.sequence];

/** A transition script's reply: its status and the ids of the events it appended. */
export interface TransitionReply {
  /** 1: done; 0: nothing to do (existed / nothing to destroy); -1: the session limit was reached. */
  readonly status: 1 | 0 | -1;
  readonly eventIds: readonly string[];
}

function transitionReply(name: string): (reply: unknown) => TransitionReply {
  return (reply) => {
    if (!Array.isArray(reply) || (reply[0] !== 1 && reply[0] !== 0 && reply[0] !== -1)) {
      throw new SessionStorageUnavailableError(`Redis answered ${name} with ${JSON.stringify(reply)}, not a transition result`);
    }
    const [status, ...eventIds] = reply as [1 | 0 | -1, ...string[]];
    return { status, eventIds };
  };
}

/** Fields every script that appends events takes. */
interface AppendArgs {
  /** From {@link sessionMember}. */
  readonly member: string;
  /** The instance id recorded as the events' origin. */
  readonly origin: string;
  /** The clock's now, ms. */
  readonly now: number;
  /** The stream's approximate MAXLEN. */
  readonly maxLength: number;
}

export interface CreateArgs extends AppendArgs {
  /** The new session's idle deadline (ms), or NO_DEADLINE. */
  readonly deadline: number;
  /** The session limit; 0 for none. */
  readonly maxSessions: number;
}

export const createScript = defineScript<CreateArgs, TransitionReply>({
  name: 'createSession',
  source: CREATE_SCRIPT,
  keys: transitionKeys,
  args: (a) => [
    a.member, a.origin, String(a.now), String(a.deadline), String(a.maxSessions), String(a.maxLength),
    a.deadline === NO_DEADLINE ? '' : String(a.deadline),
  ],
  parse: transitionReply('createSession'),
});

export const destroyScript = defineScript<AppendArgs, TransitionReply>({
  name: 'destroySession',
  source: DESTROY_SCRIPT,
  keys: transitionKeys,
  args: (a) => [a.member, a.origin, String(a.now), String(a.maxLength)],
  parse: transitionReply('destroySession'),
});

export interface TouchArgs {
  readonly member: string;
  readonly now: number;
  readonly idleTimeout: number;
  /** The deadline written when less than idleTimeout is left. */
  readonly deadline: number;
}

/** Resolves the session's deadline after the touch (ms) if live, else 0. */
export const touchScript = defineScript<TouchArgs, number>({
  name: 'hasSession',
  source: TOUCH_SCRIPT,
  keys: transitionKeys,
  args: (a) => [a.member, String(a.now), String(a.idleTimeout), String(a.deadline)],
  parse: (reply) => {
    if (typeof reply !== 'number') throw badReply('hasSession', reply);
    return reply;
  },
});

export interface TouchManyArgs {
  readonly members: readonly string[];
  readonly now: number;
  readonly idleTimeout: number;
  readonly deadline: number;
}

/** Resolves each member's deadline after the touch (ms), 0 where not live. */
export const touchManyScript = defineScript<TouchManyArgs, number[]>({
  name: 'touching sessions',
  source: TOUCH_MANY_SCRIPT,
  keys: transitionKeys,
  args: (a) => [String(a.now), String(a.idleTimeout), String(a.deadline), ...a.members],
  parse: (reply) => {
    if (!Array.isArray(reply) || !reply.every((deadline) => typeof deadline === 'number')) throw badReply('touching sessions', reply);
    return reply as number[];
  },
});

export interface SweepArgs {
  readonly now: number;
  /** The most sessions one call expires. */
  readonly batch: number;
  readonly origin: string;
  readonly maxLength: number;
}

/** Resolves the ids of the expiry events it appended. */
export const sweepScript = defineScript<SweepArgs, string[]>({
  name: 'expireIdleSessions',
  source: SWEEP_SCRIPT,
  keys: transitionKeys,
  args: (a) => [String(a.now), String(a.batch), a.origin, String(a.maxLength)],
  parse: (reply) => {
    if (!Array.isArray(reply) || !reply.every((id) => typeof id === 'string')) throw badReply('expireIdleSessions', reply);
    return reply as string[];
  },
});

/** Where a reader starts: the stream's last entry id and the sequence number so far. */
export const readerStartScript = defineScript<void, { position: string; sequence: bigint }>({
  name: 'the stream end',
  source: READER_START_SCRIPT,
  keys: readerKeys,
  args: () => [],
  parse: (reply) => {
    if (!Array.isArray(reply) || typeof reply[0] !== 'string' || typeof reply[1] !== 'string') throw badReply('the stream end', reply);
    return { position: reply[0], sequence: BigInt(reply[1]) };
  },
});

/** Whether an entry follows `position`, the stream's last id, and the sequence number so far. */
export const readerAfterScript = defineScript<{ readonly position: string }, { nextExists: boolean; lastId: string; sequence: bigint }>({
  name: 'the stream after a break',
  source: READER_AFTER_SCRIPT,
  keys: readerKeys,
  args: (a) => [a.position],
  parse: (reply) => {
    if (!Array.isArray(reply) || typeof reply[1] !== 'string' || typeof reply[2] !== 'string') throw badReply('the stream after a break', reply);
    return { nextExists: reply[0] === 1, lastId: reply[1], sequence: BigInt(reply[2]) };
  },
});

/** Any script, for code that runs scripts without knowing which. */
export type AnyRedisScript = RedisScript<never, unknown>;
