import { RedisReplyError } from '../redis-reply-error.js';
import type { RedisLayoutKeys } from '../redis-keys.js';
import { defineScript } from './define-script.js';
import { POOL_LEDGER, poolKeys } from './pool-ledger.lua.js';
import { POOL_STATUS } from './quota-status.js';

const SOURCE = `--[[
  Finishes a recount: the pool becomes maxSessions minus what the key groups
  hold (read by the recount while it held the pool, each group having
  decided every transfer to it, so that no group's quota could grow since),
  the transfers the recount found leave the ledger (the groups' quotas hold
  their outcome), and the hold ends. Refused when the hold is no longer this
  recount's (it lapsed, and a take went ahead or another recount took over:
  the groups may have changed since they were read), when the ledger holds a
  transfer the recount did not find, or when the layout record names other
  shards. maxSessions is the recorded one when there is a record (an
  operator may have changed it there), else this instance's.
  Input:
    KEYS[1] pool, KEYS[2] ledger, KEYS[3] layout
    ARGV[1] recount id, ARGV[2] the quota the groups hold, summed, ARGV[3] maxSessions, ARGV[4] shards,
    ARGV[5...] the ids of the transfers the recount found
  Output: {status, Redis ms, pool after (when done)}: ${POOL_STATUS.done} done, ${POOL_STATUS.frozen} no longer this recount's hold,
    ${POOL_STATUS.busy} a transfer it did not find, ${POOL_STATUS.mismatch} the layout record names other shards
]]
${POOL_LEDGER}
local state = redis.call('HMGET', LEDGER, 'recount', 'adopt')
if state[1] ~= ARGV[1] then return {${POOL_STATUS.frozen}, REDIS_MS} end
local known = {}
for i = 5, #ARGV do known[ARGV[i]] = true end
local found = transfers()
for i = 1, #found, 2 do
  if not known[found[i]] then return {${POOL_STATUS.busy}, REDIS_MS} end
end
local layout = redis.call('HMGET', LAYOUT, 'shards', 'maxSessions')
if layout[1] and tonumber(layout[1]) ~= tonumber(ARGV[4]) then return {${POOL_STATUS.mismatch}, REDIS_MS} end
local max = tonumber(ARGV[3])
if layout[2] and tonumber(layout[2]) > 0 then max = tonumber(layout[2]) end
local pool = max - tonumber(ARGV[2])
if state[2] == '1' then pool = math.min(pool, tonumber(redis.call('GET', POOL) or '0')) end
redis.call('SET', POOL, pool)
for i = 1, #found, 2 do redis.call('HDEL', LEDGER, 'e:' .. found[i]) end
redis.call('HSET', LEDGER, 'counted', 1)
redis.call('HDEL', LEDGER, 'recount', 'until', 'adopt')
return {${POOL_STATUS.done}, REDIS_MS, pool}
`;

export interface RecountFinishArgs {
  readonly id: string;
  /** What the key groups hold, summed. */
  readonly held: number;
  readonly maxSessions: number;
  readonly shards: number;
  /** The ids of the transfers the recount found in the ledger. */
  readonly transfers: readonly string[];
}

export type RecountFinish =
  | { readonly status: typeof POOL_STATUS.done; readonly pool: number }
  | { readonly status: typeof POOL_STATUS.frozen | typeof POOL_STATUS.busy | typeof POOL_STATUS.mismatch };

const NAME = 'finishing a session quota recount';

export const poolRecountFinishScript = defineScript<RecountFinishArgs, RecountFinish, RedisLayoutKeys>({
  name: NAME,
  source: SOURCE,
  keys: poolKeys,
  args: (a) => [a.id, String(a.held), String(a.maxSessions), String(a.shards), ...a.transfers],
  parse: (reply) => {
    if (!Array.isArray(reply) || typeof reply[1] !== 'number') throw new RedisReplyError(NAME, reply);
    if (reply[0] === POOL_STATUS.done && typeof reply[2] === 'number') return { status: POOL_STATUS.done, pool: reply[2] };
    if ((reply[0] === POOL_STATUS.frozen || reply[0] === POOL_STATUS.busy || reply[0] === POOL_STATUS.mismatch) && reply.length === 2) return { status: reply[0] };
    throw new RedisReplyError(NAME, reply);
  },
});
