import { defineScript, groupQuotaKeys, integerReply } from './define-script.js';
import { QUOTA_MARKS } from './quota-marks.lua.js';

const SOURCE = `--[[
  One key group's part of a recount, while the recount holds the pool with no
  transfer in flight: the group accepts transfers of the ledger's incarnation
  only from now on (so a grant of a ledger that was lost never lands), forgets
  the marks no transfer needs any more, and reports the quota it holds (at
  least its sessions: an evicted quota key is restored to them).
  Input: KEYS[1] the group's grants, KEYS[2] its quota, KEYS[3] its sessions; ARGV[1] ledger incarnation
  Output: the quota the group holds
]]
${QUOTA_MARKS}
redis.call('HSET', KEYS[1], 'pool', ARGV[1])
local clock = redis.call('TIME')
forget_marks(KEYS[1], ARGV[1], math.huge, tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000))
local held, live = tonumber(redis.call('GET', KEYS[2]) or '0'), redis.call('ZCARD', KEYS[3])
if held < live then
  redis.call('SET', KEYS[2], live)
  held = live
end
return held
`;

export const groupRecountScript = defineScript<{ readonly incarnation: string }, number>({
  name: 'recounting a key group\'s session quota',
  source: SOURCE,
  keys: groupQuotaKeys,
  args: (a) => [a.incarnation],
  parse: integerReply('recounting a key group\'s session quota'),
});
