import { RedisReplyError } from '../redis-reply-error.js';
import type { RedisLayoutKeys } from '../redis-keys.js';
import { defineScript } from './define-script.js';
import { POOL_LEDGER, poolKeys } from './pool-ledger.lua.js';
import { POOL_STATUS } from './quota-status.js';

const SOURCE = `--[[
  Opens one reclaim per key group named in the ledger: each group may then
  release the quota it holds unused, which joins the pool when the reclaim
  is settled. Recorded before any group releases, so that quota on its way
  back is always in the ledger.
  Input:
    KEYS[1] pool, KEYS[2] ledger, KEYS[3] layout (unused)
    ARGV[1] fence: the call's deadline on this node (Redis ms),
    ARGV[2...] pairs of a group's index and the call's deadline on its node (Redis ms)
  Output: {${POOL_STATUS.done}, Redis ms, incarnation, reclaim id of each group named, in order...},
    or {status, Redis ms}: ${POOL_STATUS.frozen}, ${POOL_STATUS.uncounted} or ${POOL_STATUS.fenced}, as for a take
]]
${POOL_LEDGER}
if REDIS_MS > tonumber(ARGV[1]) then return {${POOL_STATUS.fenced}, REDIS_MS} end
local inc, why = open_pool()
if not inc then return {why, REDIS_MS} end
local reply = {${POOL_STATUS.done}, REDIS_MS, inc}
for i = 2, #ARGV, 2 do reply[#reply + 1] = record('r', ARGV[i], 0, ARGV[i + 1]) end
return reply
`;

export interface ReclaimArgs {
  /** The call's deadline on the pool's node (Redis ms). */
  readonly fence: number;
  /** The groups to reclaim from, each with the call's deadline on its node (Redis ms). */
  readonly groups: readonly { readonly group: number; readonly fence: number }[];
}

export type ReclaimReply =
  | { readonly opened: true; readonly redisMs: number; readonly incarnation: string; readonly ids: readonly string[] }
  | { readonly opened: false; readonly redisMs: number; readonly status: number };

const NAME = 'reclaiming unused session quota';

export const poolReclaimScript = defineScript<ReclaimArgs, ReclaimReply, RedisLayoutKeys>({
  name: NAME,
  source: SOURCE,
  keys: poolKeys,
  args: (a) => [String(Math.floor(a.fence)), ...a.groups.flatMap(({ group, fence }) => [String(group), String(Math.floor(fence))])],
  parse: (reply) => {
    if (!Array.isArray(reply) || typeof reply[1] !== 'number') throw new RedisReplyError(NAME, reply);
    const [status, redisMs, incarnation, ...ids] = reply as [unknown, number, ...unknown[]];
    if (status === POOL_STATUS.done && typeof incarnation === 'string' && ids.every((id) => typeof id === 'number')) {
      return { opened: true, redisMs, incarnation, ids: ids.map(String) };
    }
    if ((status === POOL_STATUS.frozen || status === POOL_STATUS.uncounted || status === POOL_STATUS.fenced) && reply.length === 2) {
      return { opened: false, redisMs, status };
    }
    throw new RedisReplyError(NAME, reply);
  },
});
