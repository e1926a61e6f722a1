import { RedisReplyError } from '../redis-reply-error.js';
import type { RedisLayoutKeys } from '../redis-keys.js';
import { defineScript } from './define-script.js';
import { parseTransfers, POOL_LEDGER, poolKeys, type Transfer } from './pool-ledger.lua.js';
import { POOL_STATUS } from './quota-status.js';

const SOURCE = `--[[
  Starts a recount: holds the pool, so that no transfer starts until the
  recount finishes or its hold lapses, and returns the transfers in flight,
  which each group decides for good when the recount reads it. A ledger with no
  incarnation (new, lost, or an earlier version's) gets this recount's id as
  its incarnation; a missing pool is created empty. A recount of a pool that
  an earlier version kept (a pool, never counted) adopts it: it may lower
  that pool, never raise it, as instances of that version may still have
  quota in flight that no ledger records.
  Input:
    KEYS[1] pool, KEYS[2] ledger, KEYS[3] layout (unused)
    ARGV[1] recount id, ARGV[2] until: when the hold lapses (Redis ms on this node)
  Output: {${POOL_STATUS.done}, Redis ms, incarnation, 1 if the prefix was new (no pool, no ledger) else 0,
    the lowest transfer id in flight (or the next one), id, entry, id, entry...},
    or {${POOL_STATUS.frozen}, Redis ms} when another recount holds the pool
]]
${POOL_LEDGER}
local state = redis.call('HMGET', LEDGER, 'inc', 'recount', 'until', 'adopt', 'counted')
if state[2] and state[2] ~= ARGV[1] and REDIS_MS <= tonumber(state[3]) then return {${POOL_STATUS.frozen}, REDIS_MS} end
local had_pool = redis.call('EXISTS', POOL) == 1
local new = (not had_pool) and (not state[1]) and (not state[5])
if not state[4] then redis.call('HSET', LEDGER, 'adopt', (had_pool and not state[5]) and 1 or 0) end
local inc = state[1] or ARGV[1]
if not had_pool then redis.call('SET', POOL, 0) end
redis.call('HSET', LEDGER, 'inc', inc, 'recount', ARGV[1], 'until', ARGV[2])
local found, low = transfers()
local reply = {${POOL_STATUS.done}, REDIS_MS, inc, new and 1 or 0, low}
for i = 1, #found do reply[#reply + 1] = found[i] end
return reply
`;

export type RecountStart =
  | {
    readonly started: true;
    readonly redisMs: number;
    readonly incarnation: string;
    readonly newPrefix: boolean;
    /** The lowest transfer id in flight (or the next one). */
    readonly low: number;
    readonly transfers: readonly Transfer[];
  }
  | { readonly started: false; readonly redisMs: number };

const NAME = 'starting a session quota recount';

export const poolRecountStartScript = defineScript<{ readonly id: string; readonly until: number }, RecountStart, RedisLayoutKeys>({
  name: NAME,
  source: SOURCE,
  keys: poolKeys,
  args: (a) => [a.id, String(Math.floor(a.until))],
  parse: (reply) => {
    if (!Array.isArray(reply) || typeof reply[1] !== 'number') throw new RedisReplyError(NAME, reply);
    if (reply[0] === POOL_STATUS.frozen && reply.length === 2) return { started: false, redisMs: reply[1] };
    if (reply[0] !== POOL_STATUS.done || typeof reply[2] !== 'string' || (reply[3] !== 0 && reply[3] !== 1) || typeof reply[4] !== 'number') throw new RedisReplyError(NAME, reply);
    return { started: true, redisMs: reply[1], incarnation: reply[2], newPrefix: reply[3] === 1, low: reply[4], transfers: parseTransfers(NAME, reply.slice(5)) };
  },
});
