import { RedisReplyError } from '../redis-reply-error.js';
import type { RedisLayoutKeys } from '../redis-keys.js';
import { defineScript } from './define-script.js';
import { POOL_LEDGER, poolKeys } from './pool-ledger.lua.js';
import { TRANSFER, type TransferOutcome } from './quota-status.js';

const SOURCE = `--[[
  Settles transfers of the ledger once their key groups decided them: a grant
  its group refused goes back to the pool, what a group released for a
  reclaim joins it, and each leaves the ledger. A transfer that is no longer
  in the ledger was settled already (by another instance, or before a loss)
  and is skipped, so each is settled once.
  Input:
    KEYS[1] pool, KEYS[2] ledger, KEYS[3] layout (unused)
    ARGV: triples of transfer id, outcome (${TRANSFER.none} refused, ${TRANSFER.received} received,
      ${TRANSFER.released} released), amount released
  Output: {quota added to the pool, of it from grants refused, transfers settled}
]]
${POOL_LEDGER}
local added, refused, settled = 0, 0, 0
if redis.call('EXISTS', POOL) == 0 then return {0, 0, 0} end
for i = 1, #ARGV, 3 do
  local field = 'e:' .. ARGV[i]
  local entry = redis.call('HGET', LEDGER, field)
  if entry then
    local kind, amount = string.match(entry, '^(%a):%d+:(%d+):')
    local outcome, back = tonumber(ARGV[i + 1]), 0
    if kind == 'g' and outcome == ${TRANSFER.none} then
      back = tonumber(amount)
      refused = refused + back
    elseif kind == 'r' and outcome == ${TRANSFER.released} then
      back = tonumber(ARGV[i + 2])
    end
    if back > 0 then redis.call('INCRBY', POOL, back) end
    redis.call('HDEL', LEDGER, field)
    added, settled = added + back, settled + 1
  end
end
return {added, refused, settled}
`;

/** A transfer as its key group decided it. */
export interface TransferDecided {
  readonly id: string;
  readonly outcome: Exclude<TransferOutcome, typeof TRANSFER.pending>;
  /** What the group released (reclaims); 0 otherwise. */
  readonly amount: number;
}

export interface SettleReply {
  /** Quota added to the pool. */
  readonly added: number;
  /** Of it, from grants their groups refused (quota a failed call had taken). */
  readonly refused: number;
  readonly settled: number;
}

const NAME = 'settling session quota in flight';

export const poolSettleScript = defineScript<readonly TransferDecided[], SettleReply, RedisLayoutKeys>({
  name: NAME,
  source: SOURCE,
  keys: poolKeys,
  args: (decided) => decided.flatMap((one) => [one.id, String(one.outcome), String(one.amount)]),
  parse: (reply) => {
    if (!Array.isArray(reply) || reply.length !== 3 || !reply.every((count) => typeof count === 'number')) throw new RedisReplyError(NAME, reply);
    const [added, refused, settled] = reply as [number, number, number];
    return { added, refused, settled };
  },
});
