import { RedisReplyError } from '../redis-reply-error.js';
import { APPEND_FUNCTIONS, APPEND_PRELUDE, appendArgs, type BatchArgs } from './append-event.lua.js';
import { defineScript, quotaTransitionKeys } from './define-script.js';
import { QUOTA_MARKS } from './quota-marks.lua.js';

const SOURCE = `--[[
  Hands a group's unused quota back for a reclaim of the pool's ledger:
  expires up to a batch of lapsed sessions (with their events), then lowers
  the quota to the sessions left, and marks the reclaim released with that
  amount. Releases nothing when fenced, when the group decided on the
  reclaim already (it reports what it released then), or when it takes from
  another ledger.
  Input:
    KEYS[1] sessions, KEYS[2] events, KEYS[3] sequence, KEYS[4] origins, KEYS[5] quota, KEYS[6] grants
    ARGV[1] origin, ARGV[2] now (ms), ARGV[3] maxlen (MAXLEN ~), ARGV[4] fence (Redis ms)
    ARGV[5] batch: the most sessions to expire
    ARGV[6] the reclaim's id in the ledger, ARGV[7] the ledger's incarnation
  Output: {quota released, event ids...}
]]
${APPEND_PRELUDE}
${APPEND_FUNCTIONS}
${QUOTA_MARKS}
if FENCED or not accepts(KEYS[6], ARGV[7]) then return {0} end
local kind, amount = read_mark(KEYS[6], ARGV[7], ARGV[6])
if kind then return {kind == '-' and amount or 0} end
local ids = {}
expire_lapsed(tonumber(ARGV[5]), ids)
local held, live = tonumber(redis.call('GET', KEYS[5]) or '0'), redis.call('ZCARD', KEYS[1])
local spare = 0
if held > live then
  spare = held - live
  redis.call('SET', KEYS[5], live)
end
write_mark(KEYS[6], ARGV[7], ARGV[6], '-', spare, FENCE)
table.insert(ids, 1, spare)
return ids
`;

export interface ReleaseArgs extends BatchArgs {
  /** The reclaim's id in the pool's ledger, and the ledger's incarnation. */
  readonly id: string;
  readonly incarnation: string;
}

/** The quota a group handed back and the ids of the expiry events it appended. */
export const releaseQuotaScript = defineScript<ReleaseArgs, { released: number; eventIds: string[] }>({
  name: 'releasing unused session quota',
  source: SOURCE,
  keys: quotaTransitionKeys,
  args: (a) => appendArgs(a, String(a.batch), a.id, a.incarnation),
  parse: (reply) => {
    if (!Array.isArray(reply) || typeof reply[0] !== 'number' || !reply.slice(1).every((id) => typeof id === 'string')) {
      throw new RedisReplyError('releasing unused session quota', reply);
    }
    const [released, ...eventIds] = reply as [number, ...string[]];
    return { released, eventIds };
  },
});
