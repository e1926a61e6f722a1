import { RedisReplyError } from '../redis-reply-error.js';
import { APPEND_EVENT, appendArgs, type BatchArgs } from './append-event.lua.js';
import { defineScript, transitionKeys } from './define-script.js';

const SOURCE = `--[[
  Hands a group's unused quota back: expires up to a batch of lapsed sessions
  (with their events), then lowers the quota to the sessions left.
  Input:
    KEYS[1] sessions, KEYS[2] events, KEYS[3] sequence, KEYS[4] quota, KEYS[5] origins
    ARGV[1] origin, ARGV[2] now (ms), ARGV[3] maxlen (MAXLEN ~), ARGV[4] fence (0: not fenced)
    ARGV[5] batch: the most sessions to expire
  Output: {quota released, event ids...}
]]
${APPEND_EVENT}
local ids = {}
expire_lapsed(tonumber(ARGV[5]), ids)
local held, live = tonumber(redis.call('GET', KEYS[4]) or '0'), redis.call('ZCARD', KEYS[1])
local spare = 0
if held > live then
  spare = held - live
  redis.call('SET', KEYS[4], live)
end
table.insert(ids, 1, spare)
return ids
`;

/** The quota a group handed back and the ids of the expiry events it appended. */
export const releaseQuotaScript = defineScript<BatchArgs, { released: number; eventIds: string[] }>({
  name: 'releasing unused session quota',
  source: SOURCE,
  keys: transitionKeys,
  args: (a) => [...appendArgs(a), String(a.batch)],
  parse: (reply) => {
    if (!Array.isArray(reply) || typeof reply[0] !== 'number' || !reply.slice(1).every((id) => typeof id === 'string')) {
      throw new RedisReplyError('releasing unused session quota', reply);
    }
    const [released, ...eventIds] = reply as [number, ...string[]];
    return { released, eventIds };
  },
});
