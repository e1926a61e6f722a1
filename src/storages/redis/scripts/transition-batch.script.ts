import { NO_DEADLINE } from '../redis-keys.js';
import { RedisReplyError } from '../redis-reply-error.js';
import { ENTRY_TYPE } from '../redis-stream-entry.js';
import { APPEND_PRELUDE, appendArgs, appendFunctions, pastFence, SEQUENCE_LOCAL, type AppendArgs } from './append-event.lua.js';
import { defineScript, transitionKeys } from './define-script.js';
import { isTransitionStatus, LIMIT, TRANSITION, type TransitionStatus } from './transition-status.js';

/** A batch item's status when its own commands failed (its XADD refused): what it wrote was taken back, the rest ran. */
export const ITEM_FAILED = -4;

const SOURCE = `--[[
  Creates and destroys sessions of one key group, several calls in one
  script, in the order given: each item is what the create or destroy script
  does for one call (same fence, same events, same undo when its XADD
  fails), and fails alone. Redis's clock is read once, the origin's code
  looked up once, the sequence read and written once, and the script's own
  cost is paid once for all.
  Input:
    KEYS[1] sessions, KEYS[2] events, KEYS[3] sequence, KEYS[4] origins
    ARGV[1] origin, ARGV[2] now (ms), ARGV[3] maxlen (MAXLEN ~), ARGV[4] the earliest of the items'
      fences (0: none has one): before it, no item's fence is checked
    ARGV[5] limit: ${LIMIT.none} none, > 0 the most live sessions the group may hold (never the quota key)
    ARGV[6] the idle deadline of the sessions created (ms, or NO_DEADLINE)
    then per item, 3 each: 'c' create or 'd' destroy, member, fence (Redis ms; 0 none)
  Output: {TIME's seconds, TIME's microseconds, the id of the stream's last entry before the batch's
    ('' when it has none), then per item: status, the sequence number of its last
    event (0: none), how many ids follow, its event ids...}; the status as the create and destroy
    scripts give it, or ${ITEM_FAILED} with the error's text as its one "id"
]]
${APPEND_PRELUDE}
-- The sequence, read once and written back once (see SEQUENCE_LOCAL); not an integer, every call fails as its INCR would.
local SEQUENCE = tonumber(redis.call('GET', KEYS[3]) or '0')
if not SEQUENCE then return redis.error_reply('ERR the sequence key holds no integer') end
local FIRST_SEQUENCE = SEQUENCE
${appendFunctions(SEQUENCE_LOCAL)}
local function past(fence)
  local fenced
  ${pastFence('fence', 'fenced')}
  return fenced
end
local max, deadline, now = tonumber(ARGV[5]), ARGV[6], tonumber(NOW)
-- No event: the empty list a call that appended none reports (read only).
local NONE = {}
-- A create: its status and its event id, or a table of them when it appended several (or none).
local function create(member)
  if max == ${LIMIT.none} and redis.call('ZADD', KEYS[1], 'NX', deadline, member) == 1 then
    return ${TRANSITION.done}, append('${ENTRY_TYPE.created}', member, deadline, true)
  end
  local ids = {}
  local score = redis.call('ZSCORE', KEYS[1], member)
  if score then
    if tonumber(score) > now then return ${TRANSITION.unchanged}, ids end
    ids[#ids + 1] = append('${ENTRY_TYPE.expired}', member)
    redis.call('ZREM', KEYS[1], member)
  end
  if max > 0 and redis.call('ZCARD', KEYS[1]) >= max then
    expire_lapsed(100, ids)
    if redis.call('ZCOUNT', KEYS[1], '(' .. NOW, '+inf') >= max then return ${TRANSITION.limitReached}, ids end
  end
  ids[#ids + 1] = append('${ENTRY_TYPE.created}', member, deadline)
  redis.call('ZADD', KEYS[1], deadline, member)
  return ${TRANSITION.done}, ids
end
-- A destroy: as a create (a lapsed session's expiry, unchanged).
local function destroy(member)
  local score = redis.call('ZSCORE', KEYS[1], member)
  if not score then return ${TRANSITION.unchanged}, NONE end
  -- A session with no deadline never lapses: its score compared as the text ZSCORE gives, with no number parsed.
  local lapsed = score ~= '${NO_DEADLINE}' and tonumber(score) <= now
  local id = append(lapsed and '${ENTRY_TYPE.expired}' or '${ENTRY_TYPE.destroyed}', member)
  redis.call('ZREM', KEYS[1], member)
  return lapsed and ${TRANSITION.unchanged} or ${TRANSITION.done}, id
end
-- The entry the batch's first follows: an instance whose reader has handled it knows the stream up to the batch's end.
-- A stream key of the wrong type tells none (each call then fails at its XADD).
local last = redis.pcall('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
last = not last.err and last[1]
local reply = {SECONDS, MICROS, last and last[1] or ''}
for i = 7, #ARGV, 3 do
  local at = #reply
  if FENCED and past(ARGV[i + 2]) then
    reply[at + 1], reply[at + 2], reply[at + 3] = ${TRANSITION.fenced}, 0, 0
  else
    local before = LAST_SEQUENCE
    local ok, status, ids = pcall(ARGV[i] == 'c' and create or destroy, ARGV[i + 1])
    if not ok then
      local text = type(status) == 'table' and (status.err or status.ok) or status
      reply[at + 1], reply[at + 2], reply[at + 3], reply[at + 4] = ${ITEM_FAILED}, 0, 1, tostring(text)
    elseif type(ids) == 'string' then
      reply[at + 1], reply[at + 2], reply[at + 3], reply[at + 4] = status, LAST_SEQUENCE, 1, ids
    else
      reply[at + 1], reply[at + 2], reply[at + 3] = status, LAST_SEQUENCE ~= before and LAST_SEQUENCE or 0, #ids
      for j = 1, #ids do reply[at + 3 + j] = ids[j] end
    end
  end
end
if SEQUENCE ~= FIRST_SEQUENCE then redis.call('SET', KEYS[3], SEQUENCE) end
return reply
`;

/** One call in a batch. */
export interface BatchItem {
  readonly create: boolean;
  readonly member: string;
  /** The call's fence on Redis's clock (ms; 0 none). */
  readonly fence: number;
}

export interface TransitionBatchArgs extends Omit<AppendArgs, 'fence'> {
  /** The most live sessions the group may hold, or LIMIT.none. */
  readonly limit: number;
  /** The idle deadline of the sessions the batch creates (ms), or NO_DEADLINE. */
  readonly deadline: number;
  readonly items: readonly BatchItem[];
}

/** One item's outcome: as a create's or destroy's reply, or its own failure. */
export type BatchOutcome =
  | { readonly status: TransitionStatus; readonly lastSequence: number; readonly eventIds: readonly string[] }
  | { readonly status: typeof ITEM_FAILED; readonly error: string };

export interface BatchReply {
  readonly redisMs: number;
  /** The id of the stream's last entry before the batch's first ('' when the stream had none). */
  readonly previousId: string;
  readonly outcomes: readonly BatchOutcome[];
}

function batchArgs(a: TransitionBatchArgs): string[] {
  let earliest = 0;
  for (const item of a.items) if (item.fence > 0 && (earliest === 0 || item.fence < earliest)) earliest = item.fence;
  const args = appendArgs({ ...a, fence: earliest }, String(a.limit), String(a.deadline));
  for (const item of a.items) args.push(item.create ? 'c' : 'd', item.member, String(Math.floor(item.fence)));
  return args;
}

const NAME = 'a batch of transitions';

function parseBatch(reply: unknown): BatchReply {
  if (!Array.isArray(reply) || typeof reply[0] !== 'string' || typeof reply[1] !== 'string' || !/^\d{1,16}$/.test(reply[0]) || !/^\d{1,16}$/.test(reply[1])
    || typeof reply[2] !== 'string') {
    throw new RedisReplyError(NAME, reply);
  }
  const outcomes: BatchOutcome[] = [];
  let at = 3;
  while (at < reply.length) {
    const status: unknown = reply[at];
    const lastSequence: unknown = reply[at + 1];
    const count: unknown = reply[at + 2];
    if (typeof lastSequence !== 'number' || typeof count !== 'number' || count < 0 || at + 3 + count > reply.length) throw new RedisReplyError(NAME, reply);
    // One id (the common call) without a copy of the reply, nor a closure per call.
    const ids = count === 1 ? [reply[at + 3] as unknown] : (reply.slice(at + 3, at + 3 + count) as unknown[]);
    for (const id of ids) if (typeof id !== 'string') throw new RedisReplyError(NAME, reply);
    if (status === ITEM_FAILED && count === 1) outcomes.push({ status: ITEM_FAILED, error: ids[0] as string });
    else if (isTransitionStatus(status)) outcomes.push({ status, lastSequence, eventIds: ids as string[] });
    else throw new RedisReplyError(NAME, reply);
    at += 3 + count;
  }
  return { redisMs: Number(reply[0]) * 1000 + Math.floor(Number(reply[1]) / 1000), previousId: reply[2], outcomes };
}

export const transitionBatchScript = defineScript<TransitionBatchArgs, BatchReply>({
  name: NAME,
  source: SOURCE,
  keys: transitionKeys,
  args: batchArgs,
  parse: parseBatch,
});

/** What Redis answered for one item of a batch whose own commands failed (its XADD refused): it cannot run later. */
export class BatchItemError extends Error {
  override readonly name = 'BatchItemError';
}
