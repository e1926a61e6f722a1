import { RedisReplyError } from '../redis-reply-error.js';
import type { RedisLayoutKeys } from '../redis-keys.js';
import { defineScript } from './define-script.js';
import { POOL_LEDGER, poolKeys } from './pool-ledger.lua.js';
import { POOL_STATUS, type PoolStatus } from './quota-status.js';

const SOURCE = `--[[
  Takes quota from the pool for one key group and records the grant in the
  ledger, in flight until its group received it or refused it for good: at
  most ARGV[2], and at most an even share of what is left over ARGV[3] groups
  (at least 1), so that near the limit the groups hold little unused quota.
  Input:
    KEYS[1] pool, KEYS[2] ledger, KEYS[3] layout (unused)
    ARGV[1] fence: the call's deadline on this node (Redis ms), ARGV[2] most, ARGV[3] groups,
    ARGV[4] the group's index, ARGV[5] the call's deadline on the group's node (Redis ms)
  Output: {${POOL_STATUS.done}, Redis ms, amount, grant id, incarnation} taken,
    or {status, Redis ms}: ${POOL_STATUS.empty} the pool is empty, ${POOL_STATUS.frozen} a recount holds it,
    ${POOL_STATUS.uncounted} it needs a recount, ${POOL_STATUS.fenced} past the fence (nothing changed)
]]
${POOL_LEDGER}
if REDIS_MS > tonumber(ARGV[1]) then return {${POOL_STATUS.fenced}, REDIS_MS} end
local inc, why = open_pool()
if not inc then return {why, REDIS_MS} end
local left = tonumber(redis.call('GET', POOL))
if left <= 0 then return {${POOL_STATUS.empty}, REDIS_MS} end
local n = math.min(left, tonumber(ARGV[2]), math.max(1, math.floor(left / tonumber(ARGV[3]))))
redis.call('DECRBY', POOL, n)
return {${POOL_STATUS.done}, REDIS_MS, n, record('g', ARGV[4], n, ARGV[5]), inc}
`;

export interface TakeArgs {
  /** The call's deadline on the pool's node (Redis ms). */
  readonly fence: number;
  readonly most: number;
  readonly groups: number;
  readonly group: number;
  /** The call's deadline on the group's node (Redis ms), recorded with the grant. */
  readonly groupFence: number;
}

export type TakeReply =
  | { readonly status: typeof POOL_STATUS.done; readonly redisMs: number; readonly amount: number; readonly id: string; readonly incarnation: string }
  | { readonly status: Exclude<PoolStatus, typeof POOL_STATUS.done>; readonly redisMs: number };

const NAME = 'taking session quota';
const REFUSALS: ReadonlySet<unknown> = new Set([POOL_STATUS.empty, POOL_STATUS.frozen, POOL_STATUS.uncounted, POOL_STATUS.fenced]);

export const poolTakeScript = defineScript<TakeArgs, TakeReply, RedisLayoutKeys>({
  name: NAME,
  source: SOURCE,
  keys: poolKeys,
  args: (a) => [String(Math.floor(a.fence)), String(a.most), String(a.groups), String(a.group), String(Math.floor(a.groupFence))],
  parse: (reply) => {
    if (!Array.isArray(reply) || typeof reply[1] !== 'number') throw new RedisReplyError(NAME, reply);
    const [status, redisMs, amount, id, incarnation] = reply as unknown[];
    if (status === POOL_STATUS.done && typeof amount === 'number' && amount > 0 && typeof id === 'number' && typeof incarnation === 'string') {
      return { status, redisMs: redisMs as number, amount, id: String(id), incarnation };
    }
    if (REFUSALS.has(status) && reply.length === 2) return { status: status as Exclude<PoolStatus, typeof POOL_STATUS.done>, redisMs: redisMs as number };
    throw new RedisReplyError(NAME, reply);
  },
});
