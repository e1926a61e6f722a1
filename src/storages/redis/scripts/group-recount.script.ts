import { defineScript, groupQuotaKeys, integerReply } from './define-script.js';
import { QUOTA_MARKS } from './quota-marks.lua.js';

const SOURCE = `--[[
  One key group's part of a recount, while the recount holds the pool (no
  transfer starts): the group accepts transfers of the ledger's incarnation
  only from now on (so a grant of a ledger that was lost never lands),
  decides every transfer of the ledger to it for good (one it has not taken
  part in yet is refused: its grant can never land, its reclaim never
  release), forgets the marks no transfer needs any more, and reports the
  quota it holds (at least its sessions: an evicted quota key is restored to
  them). From now on its quota can only shrink until the pool is open again.
  Input:
    KEYS[1] the group's grants, KEYS[2] its quota, KEYS[3] its sessions
    ARGV[1] ledger incarnation, ARGV[2] the ledger's lowest transfer id in flight,
    ARGV[3...] pairs of the id and fence of each transfer to this group in the ledger
  Output: the quota the group holds
]]
${QUOTA_MARKS}
local inc = ARGV[1]
local clock = redis.call('TIME')
forget_marks(KEYS[1], inc, tonumber(ARGV[2]), tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000))
redis.call('HSET', KEYS[1], 'pool', inc)
for i = 3, #ARGV, 2 do
  if not read_mark(KEYS[1], inc, ARGV[i]) then write_mark(KEYS[1], inc, ARGV[i], 'x', 0, ARGV[i + 1]) end
end
local held, live = tonumber(redis.call('GET', KEYS[2]) or '0'), redis.call('ZCARD', KEYS[3])
if held < live then
  redis.call('SET', KEYS[2], live)
  held = live
end
return held
`;

export interface GroupRecountArgs {
  readonly incarnation: string;
  /** The ledger's lowest transfer id in flight (or its next id). */
  readonly low: number;
  /** The transfers to this group in the ledger. */
  readonly transfers: readonly { readonly id: string; readonly fence: number }[];
}

export const groupRecountScript = defineScript<GroupRecountArgs, number>({
  name: 'recounting a key group\'s session quota',
  source: SOURCE,
  keys: groupQuotaKeys,
  args: (a) => [a.incarnation, String(a.low), ...a.transfers.flatMap(({ id, fence }) => [id, String(Math.floor(fence))])],
  parse: integerReply('recounting a key group\'s session quota'),
});
