import { ENTRY, ENTRY_TYPE } from '../redis-stream-entry.js';
import { NO_DEADLINE } from '../redis-keys.js';

/**
 * Lua shared by the scripts that append transitions (create, destroy, sweep,
 * release). It expects KEYS = [sessions, events, sequence, origins]
 * (see transitionKeys; scripts that need the quota keys take them after) and ARGV[1..4] = origin, now, maxlen, fence.
 *
 * It reads Redis's clock first (REDIS_MS): a script whose fence (the
 * caller's deadline on Redis's clock; 0 for none) has passed may run after
 * its caller was told it failed, so it changes nothing (FENCED); transition
 * replies carry REDIS_MS so the instance keeps learning the clock
 * (RedisClock).
 *
 * Redis does not roll back a script that fails midway, so a script undoes
 * by hand what it wrote before a command that failed: the sequence is one
 * INCR, taken back (DECR) when its XADD fails (a stream key of the wrong
 * type, an entry Redis refuses), so that no hole is left in it; a change
 * made before its event (create's ZADD NX, which says by itself whether the
 * member is new) is undone when the script passes `added` to append. Each
 * transition so runs the fewest commands it can: TIME, the change, INCR,
 * the origin's HGET, XADD.
 *
 * Origins are interned: a 36-character instance id would be half of each
 * entry. The origins hash maps `i:<instance id>` to a small code, `c:<code>`
 * back to the id, and `n` to the last code given; an instance's first write
 * registers it. Readers resolve codes they have not seen with one HMGET.
 */
export const APPEND_EVENT = `
local ORIGIN, NOW, MAXLEN, FENCE = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local CLOCK = redis.call('TIME')
local REDIS_MS = tonumber(CLOCK[1]) * 1000 + math.floor(tonumber(CLOCK[2]) / 1000)
local FENCED = FENCE > 0 and REDIS_MS > FENCE
local origin_code
-- The sequence number of the last entry appended (0: none), for the replies of create and destroy.
local LAST_SEQUENCE = 0
local function code_of()
  if not origin_code then
    origin_code = redis.call('HGET', KEYS[4], 'i:' .. ORIGIN)
    if not origin_code then
      origin_code = redis.call('HINCRBY', KEYS[4], 'n', 1)
      redis.call('HSET', KEYS[4], 'i:' .. ORIGIN, origin_code, 'c:' .. origin_code, ORIGIN)
    end
  end
  return origin_code
end
-- deadline: the idle deadline to record ('${NO_DEADLINE}' or nil records none); added: the member was
-- just added to the sorted set, and is removed again if the XADD fails (the script then fails with the
-- XADD's error). A flag, not a function to call back: no closure per call.
local function append(kind, member, deadline, added)
  local n = redis.call('INCR', KEYS[3])
  local sep = string.find(member, ':', 1, true)
  local xadd = {'XADD', KEYS[2], 'MAXLEN', '~', MAXLEN, '*', '${ENTRY.type}', kind}
  if sep then
    xadd[9], xadd[10], xadd[11], xadd[12] = '${ENTRY.sessionId}', string.sub(member, sep + 1), '${ENTRY.authKeyId}', string.sub(member, 1, sep - 1)
  else
    xadd[9], xadd[10] = '${ENTRY.sessionId}', member
  end
  local at = #xadd
  xadd[at + 1], xadd[at + 2], xadd[at + 3], xadd[at + 4] = '${ENTRY.originCode}', code_of(), '${ENTRY.sequence}', n
  if deadline and deadline ~= '${NO_DEADLINE}' then xadd[at + 5], xadd[at + 6] = '${ENTRY.deadline}', deadline end
  local id = redis.pcall(unpack(xadd))
  if type(id) == 'table' then
    redis.call('DECR', KEYS[3])
    if added then redis.call('ZREM', KEYS[1], member) end
    error(id)
  end
  LAST_SEQUENCE = n
  return id
end
-- Expires up to limit lapsed sessions, appending their ids to ids; returns how many.
local function expire_lapsed(limit, ids)
  local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', NOW, 'LIMIT', 0, limit)
  for _, member in ipairs(lapsed) do
    ids[#ids + 1] = append('${ENTRY_TYPE.expired}', member)
    redis.call('ZREM', KEYS[1], member)
  end
  return #lapsed
end
`;

/** The arguments every script that appends transitions takes first, in this order. */
export interface AppendArgs {
  /** The instance id recorded as the events' origin. */
  readonly origin: string;
  /** The clock's now, ms. */
  readonly now: number;
  /** The stream's approximate MAXLEN. */
  readonly maxLength: number;
  /** The caller's deadline on Redis's clock (ms): past it the script refuses (0: never). */
  readonly fence: number;
}

/** ARGV in order: the AppendArgs, then the script's own. */
export function appendArgs(a: AppendArgs, ...own: string[]): string[] {
  return [a.origin, String(a.now), String(a.maxLength), String(Math.floor(a.fence)), ...own];
}

/** The arguments of the scripts that expire a batch of lapsed sessions. */
export interface BatchArgs extends AppendArgs {
  /** The most sessions one call expires. */
  readonly batch: number;
}
