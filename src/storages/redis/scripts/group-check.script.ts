import { defineScript, groupQuotaKeys, integerReply } from './define-script.js';
import { QUOTA_MARKS } from './quota-marks.lua.js';

const SOURCE = `--[[
  A healing pass's look at one key group: whether its quota is counted in the
  ledger's incarnation (it is not after the group's data was lost, before its
  first recount, or when it holds fewer quota than sessions, as after an
  eviction of its quota key), forgetting the marks no transfer needs any more.
  Input:
    KEYS[1] the group's grants, KEYS[2] its quota, KEYS[3] its sessions
    ARGV[1] ledger incarnation, ARGV[2] the ledger's lowest transfer id in flight
  Output: 1 counted, 0 not (a recount is due)
]]
${QUOTA_MARKS}
if redis.call('HGET', KEYS[1], 'pool') ~= ARGV[1] then return 0 end
if tonumber(redis.call('GET', KEYS[2]) or '0') < redis.call('ZCARD', KEYS[3]) then return 0 end
local clock = redis.call('TIME')
forget_marks(KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000))
return 1
`;

export const groupCheckScript = defineScript<{ readonly incarnation: string; readonly low: number }, number>({
  name: 'checking a key group\'s session quota',
  source: SOURCE,
  keys: groupQuotaKeys,
  args: (a) => [a.incarnation, String(a.low)],
  parse: integerReply('checking a key group\'s session quota'),
});
