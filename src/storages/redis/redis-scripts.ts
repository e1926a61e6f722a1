import { createHash } from 'node:crypto';
import { SessionStorageUnavailableError } from '../../core/session-storage-errors.js';
import { NO_DEADLINE, type RedisLayoutKeys, type RedisSessionKeys } from './redis-keys.js';

/**
 * Each transition changes the sorted set and appends its event to the stream
 * in one script, so a crash can never leave one without the other. Redis does
 * not roll back a script that fails midway, so each script first reads the
 * sorted set (failing before any write if the key is of the wrong type), then
 * appends the event (failing before the change if the stream key is), and
 * changes the set last. Two writes come earlier, neither a change a failure
 * could leave half done: a create's quota grant (INCRBY), and the interning
 * of the instance's origin code in the origins hash.
 *
 * KEYS: [sessions, events, sequence, quota, origins]. Stream fields: t = c (created) |
 * d (destroyed) | x (expired), s = session id, a = auth key id (scoped
 * sessions only), i = the origin's code (see below), n = sequence number (one more than
 * the entry before it, so a reader can tell when entries were trimmed unread),
 * e = the idle deadline in ms (created entries of expiring sessions only, for
 * the readers' replicas).
 * The sequence is read before and written after the XADD, so a failing XADD
 * leaves no hole in it.
 *
 * Origins are interned: a 36-character instance id would be half of each
 * entry. The origins hash maps `i:<instance id>` to a small code, `c:<code>`
 * back to the id, and `n` to the last code given; an instance's first write
 * registers it. Readers resolve codes they have not seen with one HMGET.
 * (Entries with an `o` field, the instance id itself, are read as well.)
 */
const APPEND_EVENT = `
local origin_code
local function code_of(origin)
  if not origin_code then
    origin_code = redis.call('HGET', KEYS[5], 'i:' .. origin)
    if not origin_code then
      origin_code = redis.call('HINCRBY', KEYS[5], 'n', 1)
      redis.call('HSET', KEYS[5], 'i:' .. origin, origin_code, 'c:' .. origin_code, origin)
    end
  end
  return origin_code
end
local function append(kind, member, origin, maxlen, deadline)
  local n = (tonumber(redis.call('GET', KEYS[3])) or 0) + 1
  local code = code_of(origin)
  local sep = string.find(member, ':', 1, true)
  local xadd = {'XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*', 't', kind}
  if sep then
    xadd[9], xadd[10], xadd[11], xadd[12] = 's', string.sub(member, sep + 1), 'a', string.sub(member, 1, sep - 1)
  else
    xadd[9], xadd[10] = 's', member
  end
  local at = #xadd
  xadd[at + 1], xadd[at + 2], xadd[at + 3], xadd[at + 4] = 'i', code, 'n', n
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
 * ARGV: member, origin, now, deadline, limit, maxlen, deadline to record in
 * the entry ('' for none), grant. limit: 0 none, > 0 the most sessions the
 * group may hold (one group: maxSessions), -1 the group's quota key holds it
 * (several groups share maxSessions). grant: quota taken from the pool for
 * this group, added first so that it is never lost.
 * Returns {status, event ids...}: status 1 created, 0 existed, -1 limit
 * reached, -2 the group's quota is used up (take more from the pool).
 * A lapsed session is expired (and announced) first, then created anew.
 * KEYS: [sessions, events, sequence, quota, origins].
 */
const CREATE_SCRIPT = `${APPEND_EVENT}
local member, origin, now, maxlen = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[6]
local grant = tonumber(ARGV[8])
if grant > 0 then redis.call('INCRBY', KEYS[4], grant) end
local ids = {}
local score = redis.call('ZSCORE', KEYS[1], member)
if score then
  if tonumber(score) > now then return {0} end
  ids[#ids + 1] = append('x', member, origin, maxlen)
  redis.call('ZREM', KEYS[1], member)
end
local max, full = tonumber(ARGV[5]), -1
if max < 0 then max, full = tonumber(redis.call('GET', KEYS[4]) or '0'), -2 end
if (max > 0 or full == -2) and redis.call('ZCARD', KEYS[1]) >= max then
  expire_lapsed(now, 100, origin, maxlen, ids)
  if redis.call('ZCARD', KEYS[1]) >= max then
    table.insert(ids, 1, full)
    return ids
  end
end
ids[#ids + 1] = append('c', member, origin, maxlen, ARGV[7] ~= '' and ARGV[7] or nil)
redis.call('ZADD', KEYS[1], ARGV[4], member)
table.insert(ids, 1, 1)
return ids
`;

/**
 * Hands a group's unused quota back: expires up to ARGV[1] lapsed sessions
 * (announced), then lowers the quota to the sessions left. ARGV: batch, now,
 * origin, maxlen. Returns {quota released, event ids...}.
 * KEYS: [sessions, events, sequence, quota, origins].
 */
const RELEASE_SCRIPT = `${APPEND_EVENT}
local ids = {}
expire_lapsed(tonumber(ARGV[2]), tonumber(ARGV[1]), ARGV[3], ARGV[4], ids)
local held, live = tonumber(redis.call('GET', KEYS[4]) or '0'), redis.call('ZCARD', KEYS[1])
local spare = 0
if held > live then
  spare = held - live
  redis.call('SET', KEYS[4], live)
end
table.insert(ids, 1, spare)
return ids
`;

/**
 * Takes quota from the pool for one group: at most ARGV[1], and at most an
 * even share of what is left over ARGV[2] groups (at least 1), so that near
 * the limit the groups hold little unused quota. Returns how much was taken.
 * KEYS: [pool].
 */
const POOL_TAKE_SCRIPT = `
local left = tonumber(redis.call('GET', KEYS[1]) or '0')
if left <= 0 then return 0 end
local n = math.min(left, tonumber(ARGV[1]), math.max(1, math.floor(left / tonumber(ARGV[2]))))
redis.call('DECRBY', KEYS[1], n)
return n
`;

/** Gives released quota back to the pool. ARGV: amount. KEYS: [pool]. */
const POOL_GIVE_SCRIPT = `
return redis.call('INCRBY', KEYS[1], ARGV[1])
`;

/**
 * Records the layout the first time and returns the recorded one, read and
 * written together. ARGV: layout name, shards, maxSessions (0: none).
 * Returns {layout, shards, maxSessions} as recorded, or {'single-unrecorded'}
 * when no layout is recorded but the one-group keys hold data and ARGV asks
 * for more groups (data of a version before layouts were recorded).
 * On first record with a limit and several groups, the pool starts full.
 * KEYS: [layout, pool, single sessions, single events].
 */
const LAYOUT_SCRIPT = `
local recorded = redis.call('HMGET', KEYS[1], 'layout', 'shards', 'maxSessions')
if recorded[1] then return recorded end
if tonumber(ARGV[2]) > 1 and (redis.call('EXISTS', KEYS[3]) == 1 or redis.call('EXISTS', KEYS[4]) == 1) then
  return {'single-unrecorded'}
end
redis.call('HSET', KEYS[1], 'layout', ARGV[1], 'shards', ARGV[2], 'maxSessions', ARGV[3])
if tonumber(ARGV[2]) > 1 and tonumber(ARGV[3]) > 0 then redis.call('SET', KEYS[2], ARGV[3]) end
return {ARGV[1], ARGV[2], ARGV[3]}
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
 * Where a reader starts: the last entry's id ('0-0' for an empty stream),
 * the sequence number so far and the loss epoch, read together.
 * KEYS: [events, sequence, epoch].
 */
const READER_START_SCRIPT = `
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
return {last[1] and last[1][1] or '0-0', redis.call('GET', KEYS[2]) or '0', redis.call('GET', KEYS[3]) or '0'}
`;

/**
 * Records, for every instance, that Redis lost acknowledged history.
 *
 * Only an instance that had read the lost entries can tell: after a restore
 * from an older snapshot, or a Cluster failover to a replica that lagged,
 * the sequence numbers go on seamlessly from the older state, so an instance
 * that had not read past it sees nothing wrong. The instance that finds the
 * sequence gone back (a reader whose last entry carried a higher number than
 * Redis now has) appends a loss entry (t = l, g = the new epoch), read like
 * any other entry, in order, by every instance, lagging ones included.
 *
 * The epoch key says how many losses were recorded, so that several
 * instances that find the same loss record it once: an instance passes the
 * epoch it knows, and the script records a new one unless Redis already holds
 * a newer epoch (another instance got there first: its entry is in the
 * stream). A restore or a failover takes the epoch key back too; then the
 * known epoch is the newer one, and the new epoch is one past it, so an
 * epoch never repeats for the instances that saw it.
 *
 * KEYS: [events, sequence, epoch]. ARGV: known epoch, origin, maxlen.
 * Returns {1, epoch, entry id} when recorded, {0, epoch} when another
 * instance had recorded it.
 */
const RECORD_LOSS_SCRIPT = `
local current = tonumber(redis.call('GET', KEYS[3]) or '0')
local known = tonumber(ARGV[1])
if current > known then return {0, tostring(current)} end
local epoch = math.max(current, known) + 1
local n = (tonumber(redis.call('GET', KEYS[2])) or 0) + 1
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 't', 'l', 'g', epoch, 'o', ARGV[2], 'n', n)
redis.call('SET', KEYS[2], n)
redis.call('SET', KEYS[3], epoch)
return {1, tostring(epoch), id}
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
export interface RedisScript<A, R, K = RedisSessionKeys> {
  /** For error messages: what the script does. */
  readonly name: string;
  readonly source: string;
  readonly sha1: string;
  keys(keys: K): string[];
  args(args: A): string[];
  /** Throws `SessionStorageUnavailableError` on a reply of the wrong shape. */
  parse(reply: unknown): R;
}

function defineScript<A, R, K = RedisSessionKeys>(definition: Omit<RedisScript<A, R, K>, 'sha1'>): RedisScript<A, R, K> {
  return { ...definition, sha1: createHash('sha1').update(definition.source).digest('hex') };
}

function badReply(name: string, reply: unknown): SessionStorageUnavailableError {
  return new SessionStorageUnavailableError(`Redis answered ${name} with ${JSON.stringify(reply)}, not the reply its script gives`);
}

// Every script that appends events takes the same five keys, so the shared append code finds the origins hash at KEYS[5].
const transitionKeys = (keys: RedisSessionKeys): string[] => [keys.sessions, keys.events, keys.sequence, keys.quota, keys.origins];
const readerKeys = (keys: RedisSessionKeys): string[] => [keys.events, keys.sequence, keys.epoch];
// A touch reads and writes the sorted set alone: the lookup path sends no other key.
const touchKeys = (keys: RedisSessionKeys): string[] => [keys.sessions];

/** A transition script's reply: its status and the ids of the events it appended. */
export interface TransitionReply {
  /** 1: done; 0: nothing to do (existed / nothing to destroy); -1: the session limit was reached; -2: the group's quota is used up. */
  readonly status: 1 | 0 | -1 | -2;
  readonly eventIds: readonly string[];
}

function transitionReply(name: string): (reply: unknown) => TransitionReply {
  return (reply) => {
    if (!Array.isArray(reply) || (reply[0] !== 1 && reply[0] !== 0 && reply[0] !== -1 && reply[0] !== -2)) {
      throw new SessionStorageUnavailableError(`Redis answered ${name} with ${JSON.stringify(reply)}, not a transition result`);
    }
    const [status, ...eventIds] = reply as [1 | 0 | -1 | -2, ...string[]];
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
  /** The most sessions the group may hold; 0 for none; -1 its quota key holds it. */
  readonly limit: number;
  /** Quota taken from the pool for this group, added before anything else. */
  readonly grant: number;
}

export const createScript = defineScript<CreateArgs, TransitionReply>({
  name: 'createSession',
  source: CREATE_SCRIPT,
  keys: transitionKeys,
  args: (a) => [
    a.member, a.origin, String(a.now), String(a.deadline), String(a.limit), String(a.maxLength),
    a.deadline === NO_DEADLINE ? '' : String(a.deadline), String(a.grant),
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
  keys: touchKeys,
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
  keys: touchKeys,
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

/** Where a reader starts: the stream's last entry id, the sequence number so far, and the loss epoch. */
export const readerStartScript = defineScript<void, { position: string; sequence: bigint; epoch: bigint }>({
  name: 'the stream end',
  source: READER_START_SCRIPT,
  keys: readerKeys,
  args: () => [],
  parse: (reply) => {
    if (!Array.isArray(reply) || typeof reply[0] !== 'string' || !isCount(reply[1]) || !isCount(reply[2])) throw badReply('the stream end', reply);
    return { position: reply[0], sequence: BigInt(reply[1]), epoch: BigInt(reply[2]) };
  },
});

export interface RecordLossArgs {
  /** The loss epoch the reader knows. */
  readonly epoch: bigint;
  readonly origin: string;
  readonly maxLength: number;
}

/** Whether this call recorded the loss (else another instance had), and the epoch Redis now holds. */
export const recordLossScript = defineScript<RecordLossArgs, { recorded: boolean; epoch: bigint }>({
  name: 'recording lost history',
  source: RECORD_LOSS_SCRIPT,
  keys: readerKeys,
  args: (a) => [String(a.epoch), a.origin, String(a.maxLength)],
  parse: (reply) => {
    if (!Array.isArray(reply) || (reply[0] !== 0 && reply[0] !== 1) || !isCount(reply[1])) throw badReply('recording lost history', reply);
    return { recorded: reply[0] === 1, epoch: BigInt(reply[1]) };
  },
});

function isCount(value: unknown): value is string {
  return typeof value === 'string' && /^\d{1,19}$/.test(value);
}

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

/** The quota a group handed back and the ids of the expiry events it appended. */
export const releaseScript = defineScript<SweepArgs, { released: number; eventIds: string[] }>({
  name: 'releasing unused session quota',
  source: RELEASE_SCRIPT,
  keys: transitionKeys,
  args: (a) => [String(a.batch), String(a.now), a.origin, String(a.maxLength)],
  parse: (reply) => {
    if (!Array.isArray(reply) || typeof reply[0] !== 'number' || !reply.slice(1).every((id) => typeof id === 'string')) {
      throw badReply('releasing unused session quota', reply);
    }
    const [released, ...eventIds] = reply as [number, ...string[]];
    return { released, eventIds };
  },
});

const poolKeys = (keys: RedisLayoutKeys): string[] => [keys.pool];

function integerReply(name: string): (reply: unknown) => number {
  return (reply) => {
    if (typeof reply !== 'number') throw badReply(name, reply);
    return reply;
  };
}

/** Resolves how much quota was taken (0: the pool is empty). */
export const poolTakeScript = defineScript<{ readonly most: number; readonly groups: number }, number, RedisLayoutKeys>({
  name: 'taking session quota',
  source: POOL_TAKE_SCRIPT,
  keys: poolKeys,
  args: (a) => [String(a.most), String(a.groups)],
  parse: integerReply('taking session quota'),
});

export const poolGiveScript = defineScript<{ readonly amount: number }, number, RedisLayoutKeys>({
  name: 'returning session quota',
  source: POOL_GIVE_SCRIPT,
  keys: poolKeys,
  args: (a) => [String(a.amount)],
  parse: integerReply('returning session quota'),
});

/** A prefix's layout as recorded in Redis. */
export interface RecordedLayout {
  readonly layout: string;
  readonly shards: number;
  readonly maxSessions: number;
}

/** Resolves the recorded layout, or 'single-unrecorded' (one-group data, no record, more groups asked for). */
export const layoutScript = defineScript<RecordedLayout, RecordedLayout | 'single-unrecorded', RedisLayoutKeys>({
  name: 'the key layout',
  source: LAYOUT_SCRIPT,
  keys: (keys) => [keys.layout, keys.pool, keys.single.sessions, keys.single.events],
  args: (a) => [a.layout, String(a.shards), String(a.maxSessions)],
  parse: (reply) => {
    if (Array.isArray(reply) && reply.length === 1 && reply[0] === 'single-unrecorded') return 'single-unrecorded';
    if (!Array.isArray(reply) || reply.length !== 3 || !reply.every((field) => typeof field === 'string')) throw badReply('the key layout', reply);
    const [layout, shards, maxSessions] = reply as [string, string, string];
    return { layout, shards: Number(shards), maxSessions: Number(maxSessions) };
  },
});

/** Any script, for code that runs scripts without knowing which. */
export type AnyRedisScript = RedisScript<never, unknown, never>;
