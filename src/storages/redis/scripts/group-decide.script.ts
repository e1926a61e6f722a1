import { RedisReplyError } from '../redis-reply-error.js';
import type { RedisSessionKeys } from '../redis-keys.js';
import { defineScript } from './define-script.js';
import { QUOTA_MARKS } from './quota-marks.lua.js';
import { TRANSFER, type TransferOutcome } from './quota-status.js';

const SOURCE = `--[[
  Decides a transfer of the quota ledger on its key group's side, for good:
  received (a grant) or released (a reclaim) if its mark says so; else, once
  its fence has passed on this node, so that no script of its call can still
  run, refused (marked so: should one run anyway, it finds the mark and takes
  no part); before that, pending.
  Input: KEYS[1] the group's grants; ARGV[1] ledger incarnation, ARGV[2] transfer id, ARGV[3] fence (Redis ms)
  Output: {outcome, amount}: ${TRANSFER.received} received, ${TRANSFER.released} released, ${TRANSFER.none} refused, ${TRANSFER.pending} pending
]]
${QUOTA_MARKS}
local kind, amount = read_mark(KEYS[1], ARGV[1], ARGV[2])
if kind == '+' then return {${TRANSFER.received}, amount} end
if kind == '-' then return {${TRANSFER.released}, amount} end
if kind then return {${TRANSFER.none}, 0} end
local clock = redis.call('TIME')
if tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000) <= tonumber(ARGV[3]) then return {${TRANSFER.pending}, 0} end
write_mark(KEYS[1], ARGV[1], ARGV[2], 'x', 0, ARGV[3])
return {${TRANSFER.none}, 0}
`;

export interface DecideArgs {
  readonly incarnation: string;
  readonly id: string;
  readonly fence: number;
}

const NAME = 'deciding session quota in flight';
const OUTCOMES: ReadonlySet<unknown> = new Set(Object.values(TRANSFER));

export const groupDecideScript = defineScript<DecideArgs, { outcome: TransferOutcome; amount: number }>({
  name: NAME,
  source: SOURCE,
  keys: (keys: RedisSessionKeys) => [keys.grants],
  args: (a) => [a.incarnation, a.id, String(Math.floor(a.fence))],
  parse: (reply) => {
    if (!Array.isArray(reply) || reply.length !== 2 || !OUTCOMES.has(reply[0]) || typeof reply[1] !== 'number') throw new RedisReplyError(NAME, reply);
    return { outcome: reply[0] as TransferOutcome, amount: reply[1] };
  },
});
