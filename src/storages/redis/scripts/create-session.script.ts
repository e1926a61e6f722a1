import { NO_DEADLINE } from '../redis-keys.js';
import { ENTRY_TYPE } from '../redis-stream-entry.js';
import { APPEND_FUNCTIONS, APPEND_PRELUDE, appendArgs, appendEntry, type AppendArgs } from './append-event.lua.js';
import { defineScript, quotaTransitionKeys, transitionKeys } from './define-script.js';
import { QUOTA_MARKS } from './quota-marks.lua.js';
import { transitionReply, type TransitionReply } from './transition-reply.js';
import { LIMIT, TRANSITION } from './transition-status.js';

const SOURCE = `--[[
  Creates a session, with its created event, unless it exists.
  A lapsed session is expired (and announced) first, then created anew; when
  the group is full, lapsed sessions are expired to make room first.
  Input:
    KEYS[1] sessions, KEYS[2] events, KEYS[3] sequence, KEYS[4] origins; with a quota (limit ${LIMIT.quotaKey}),
      KEYS[5] quota, KEYS[6] grants
    ARGV[1] origin, ARGV[2] now (ms), ARGV[3] maxlen (MAXLEN ~), ARGV[4] fence (Redis ms; 0 none)
    ARGV[5] member
    ARGV[6] deadline (ms; also recorded in the entry unless it is NO_DEADLINE; absent: NO_DEADLINE)
    ARGV[7] limit: ${LIMIT.none} (or absent) none, > 0 the most live sessions the group may hold,
            ${LIMIT.quotaKey} the group's quota key holds it (several groups share maxSessions)
    with a quota only: ARGV[8] grant: quota taken from the pool for this group (0: none), ARGV[9] its id
            in the pool's ledger, ARGV[10] the ledger's incarnation. Added to the quota first, and marked received,
            unless fenced, or the group decided on it already, or takes from another ledger
            (then the ledger's healer gives it back to the pool: see redis-session-quota.ts)
  Output: {status, Redis's clock (TIME's seconds and microseconds), the last event's sequence number (0: none), event ids...}; status ${TRANSITION.done} created, ${TRANSITION.unchanged} existed,
    ${TRANSITION.limitReached} limit reached, ${TRANSITION.quotaUsedUp} the group's quota is used up,
    ${TRANSITION.fenced} past the fence (nothing else changed)
]]
${APPEND_PRELUDE}
local member, deadline = ARGV[5], ARGV[6] or '${NO_DEADLINE}'
if FENCED then return {${TRANSITION.fenced}, SECONDS, MICROS, 0} end
local grant = tonumber(ARGV[8] or '0')
if grant > 0 then
  -- The ledger's functions are made only here: a create without a grant (the common case) makes none.
  ${QUOTA_MARKS}
  if accepts(KEYS[6], ARGV[10]) and not read_mark(KEYS[6], ARGV[10], ARGV[9]) then
    redis.call('INCRBY', KEYS[5], grant)
    write_mark(KEYS[6], ARGV[10], ARGV[9], '+', grant, FENCE)
  end
end
local max, full = tonumber(ARGV[7] or '${LIMIT.none}'), ${TRANSITION.limitReached}
-- Without a limit, ZADD NX both tests and adds: a new member (the common case) costs no ZSCORE, and
-- its reply is built at once.
if max == ${LIMIT.none} and redis.call('ZADD', KEYS[1], 'NX', deadline, member) == 1 then
  local id
  ${appendEntry(`'${ENTRY_TYPE.created}'`, 'member', 'deadline', 'true')}
  return {${TRANSITION.done}, SECONDS, MICROS, LAST_SEQUENCE, id}
end
${APPEND_FUNCTIONS}
local ids = {}
local score = redis.call('ZSCORE', KEYS[1], member)
if score then
  if tonumber(score) > tonumber(NOW) then return {${TRANSITION.unchanged}, SECONDS, MICROS, 0} end
  ids[#ids + 1] = append('${ENTRY_TYPE.expired}', member)
  redis.call('ZREM', KEYS[1], member)
end
if max == ${LIMIT.quotaKey} then max, full = tonumber(redis.call('GET', KEYS[5]) or '0'), ${TRANSITION.quotaUsedUp} end
if (max > 0 or full == ${TRANSITION.quotaUsedUp}) and redis.call('ZCARD', KEYS[1]) >= max then
  expire_lapsed(100, ids)
  -- One group counts its live sessions (exact); a quota counts every member until it is expired (never over).
  local held
  if full == ${TRANSITION.limitReached} then held = redis.call('ZCOUNT', KEYS[1], '(' .. NOW, '+inf') else held = redis.call('ZCARD', KEYS[1]) end
  if held >= max then return {full, SECONDS, MICROS, LAST_SEQUENCE, unpack(ids)} end
end
ids[#ids + 1] = append('${ENTRY_TYPE.created}', member, deadline)
redis.call('ZADD', KEYS[1], deadline, member)
return {${TRANSITION.done}, SECONDS, MICROS, LAST_SEQUENCE, unpack(ids)}
`;

export interface CreateArgs extends AppendArgs {
  readonly member: string;
  /** The new session's idle deadline (ms), or NO_DEADLINE. */
  readonly deadline: number;
  /** The most sessions the group may hold, or a {@link LIMIT} value. */
  readonly limit: number;
  /** Quota taken from the pool for this group (0: none), added before anything else. */
  readonly grant: number;
  /** The grant's id in the pool's ledger, and the ledger's incarnation ('' without a grant). */
  readonly grantId: string;
  readonly incarnation: string;
}

function createArgs(a: CreateArgs): string[] {
  if (a.limit === LIMIT.quotaKey) return appendArgs(a, a.member, String(a.deadline), String(a.limit), String(a.grant), a.grantId, a.incarnation);
  if (a.limit !== LIMIT.none) return appendArgs(a, a.member, String(a.deadline), String(a.limit));
  return a.deadline === NO_DEADLINE ? appendArgs(a, a.member) : appendArgs(a, a.member, String(a.deadline));
}

export const createSessionScript = defineScript<CreateArgs, TransitionReply>({
  name: 'createSession',
  source: SOURCE,
  // Without a quota, neither its keys nor the grant's arguments; without a limit or a deadline, neither of
  // those: a create of one group with neither sends 12 strings.
  keys: (keys, a) => (a.limit === LIMIT.quotaKey ? quotaTransitionKeys(keys) : transitionKeys(keys)),
  args: createArgs,
  parse: transitionReply('createSession'),
});
