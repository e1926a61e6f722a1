import { RedisReplyError } from '../redis-reply-error.js';
import type { RedisLayoutKeys } from '../redis-keys.js';
import { POOL_STATUS } from './quota-status.js';

/**
 * Lua shared by the scripts on the pool's side of the quota ledger (see
 * redis-session-quota.ts). They expect KEYS = [pool, ledger, layout] (see
 * poolKeys), all under the prefix's own hash tag, and read Redis's clock
 * first (REDIS_MS).
 *
 * Fields of the ledger hash:
 * - `inc`: the ledger's incarnation, a random name given by the recount that
 *   found none; the key groups accept transfers of their recorded
 *   incarnation only, so a transfer of a ledger that was lost never lands
 *   after its group was recounted.
 * - `next`: the last transfer id given.
 * - `e:<id>`: a transfer in flight, `<kind>:<group>:<amount>:<fence>`: kind
 *   `g` a grant (amount taken from the pool for the group), `r` a reclaim
 *   (the group releases what it holds unused); fence is the deadline of its
 *   call on the group's node, past which the group refuses it for good.
 * - `recount`, `until`: the recount holding the pool, and when its hold lapses
 *   (Redis ms); `adopt`: its kind, 1 when it adopts a pool an earlier version
 *   kept (it may lower that pool, never raise it); `counted`: a recount
 *   finished once.
 */
export const POOL_LEDGER = `
local POOL, LEDGER, LAYOUT = KEYS[1], KEYS[2], KEYS[3]
local CLOCK = redis.call('TIME')
local REDIS_MS = tonumber(CLOCK[1]) * 1000 + math.floor(tonumber(CLOCK[2]) / 1000)
-- The incarnation when transfers may start now; else nil and the status that says why. A recount
-- whose hold has lapsed is dropped here, so that its finish, if it comes late, is refused. Until a
-- recount has finished, the pool is not counted: one cut off after its start leaves it empty.
local function open_pool()
  local state = redis.call('HMGET', LEDGER, 'inc', 'recount', 'until', 'counted')
  if (not state[1]) or (not state[4]) or redis.call('EXISTS', POOL) == 0 then return nil, ${POOL_STATUS.uncounted} end
  if state[2] then
    if REDIS_MS <= tonumber(state[3]) then return nil, ${POOL_STATUS.frozen} end
    redis.call('HDEL', LEDGER, 'recount', 'until')
  end
  return state[1]
end
-- Records a transfer in flight; returns its id.
local function record(kind, group, amount, fence)
  local id = redis.call('HINCRBY', LEDGER, 'next', 1)
  redis.call('HSET', LEDGER, 'e:' .. id, kind .. ':' .. group .. ':' .. amount .. ':' .. fence)
  return id
end
-- Every transfer in flight, flattened {id, entry, ...}, and the lowest id (or the next one when none).
local function transfers()
  local fields = redis.call('HGETALL', LEDGER)
  local found, low = {}, (tonumber(redis.call('HGET', LEDGER, 'next')) or 0) + 1
  for i = 1, #fields, 2 do
    local id = string.match(fields[i], '^e:(%d+)$')
    if id then
      found[#found + 1] = id
      found[#found + 1] = fields[i + 1]
      low = math.min(low, tonumber(id))
    end
  end
  return found, low
end
`;

/** The keys of the pool's scripts, in the order POOL_LEDGER expects them. */
export const poolKeys = (keys: RedisLayoutKeys): string[] => [keys.pool, keys.ledger, keys.layout];

/** A transfer of quota between the pool and a key group, recorded in the ledger until it is settled. */
export interface Transfer {
  readonly id: string;
  readonly kind: 'grant' | 'reclaim';
  /** The key group's index. */
  readonly group: number;
  /** A grant's amount (a reclaim's is what its group released, known to the group alone). */
  readonly amount: number;
  /** Its call's deadline on the group's node (Redis ms): past it the group refuses it for good. */
  readonly fence: number;
}

/** Parses the flattened {id, entry, ...} of the ledger's transfers. */
export function parseTransfers(name: string, flat: readonly unknown[]): Transfer[] {
  const transfers: Transfer[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    const id = flat[i];
    const match = typeof flat[i + 1] === 'string' ? /^([gr]):(\d+):(\d+):(\d+)$/.exec(flat[i + 1] as string) : null;
    if (typeof id !== 'string' || match === null) throw new RedisReplyError(name, flat);
    transfers.push({ id, kind: match[1] === 'g' ? 'grant' : 'reclaim', group: Number(match[2]), amount: Number(match[3]), fence: Number(match[4]) });
  }
  return transfers;
}
