import { createHash } from 'node:crypto';

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
 * the entry before it, so a reader can tell when entries were trimmed unread).
 * The sequence is read before and written after the XADD, so a failing XADD
 * leaves no hole in it.
 */
const APPEND_EVENT = `
local function append(kind, member, origin, maxlen)
  local n = (tonumber(redis.call('GET', KEYS[3])) or 0) + 1
  local sep = string.find(member, ':', 1, true)
  local id
  if sep then
    id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*', 't', kind, 's', string.sub(member, sep + 1), 'a', string.sub(member, 1, sep - 1), 'o', origin, 'n', n)
  else
    id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*', 't', kind, 's', member, 'o', origin, 'n', n)
  end
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
 * ARGV: member, origin, now, deadline, maxSessions (0: none), maxlen.
 * Returns {status, event ids...}: status 1 created, 0 existed, -1 limit reached.
 * A lapsed session is expired (and announced) first, then created anew.
 */
export const CREATE_SCRIPT = `${APPEND_EVENT}
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
ids[#ids + 1] = append('c', member, origin, maxlen)
redis.call('ZADD', KEYS[1], ARGV[4], member)
table.insert(ids, 1, 1)
return ids
`;

/**
 * ARGV: member, origin, now, maxlen. Returns {status, event ids...}: status 1
 * destroyed, 0 nothing to destroy (a lapsed session is expired and announced instead).
 */
export const DESTROY_SCRIPT = `${APPEND_EVENT}
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
 * ARGV: member, now, idleTimeout, new deadline. Returns 1 if live, else 0.
 */
export const TOUCH_SCRIPT = `
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then return 0 end
local deadline, now = tonumber(score), tonumber(ARGV[2])
if deadline <= now then return 0 end
if deadline - now < tonumber(ARGV[3]) then redis.call('ZADD', KEYS[1], 'XX', ARGV[4], ARGV[1]) end
return 1
`;

/**
 * Where a reader starts: the last entry's id ('0-0' for an empty stream)
 * and the sequence number so far, read together. KEYS: [events, sequence].
 */
export const READER_START_SCRIPT = `
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
return {last[1] and last[1][1] or '0-0', redis.call('GET', KEYS[2]) or '0'}
`;

/**
 * What a reader back from a break needs, read together: whether an entry
 * follows its position (ARGV[1]), the last entry's id, and the sequence so far.
 * KEYS: [events, sequence].
 */
export const READER_AFTER_SCRIPT = `
local next = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', 1)
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
return {next[1] and 1 or 0, last[1] and last[1][1] or '0-0', redis.call('GET', KEYS[2]) or '0'}
`;

/** ARGV: now, batch, origin, maxlen. Expires up to batch lapsed sessions; returns their event ids. */
export const SWEEP_SCRIPT = `${APPEND_EVENT}
local ids = {}
expire_lapsed(tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4], ids)
return ids
`;

export interface RedisScript {
  readonly source: string;
  readonly sha1: string;
}

export function script(source: string): RedisScript {
  return { source, sha1: createHash('sha1').update(source).digest('hex') };
}
