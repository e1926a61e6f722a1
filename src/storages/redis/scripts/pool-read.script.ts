import { RedisReplyError } from '../redis-reply-error.js';
import type { RedisLayoutKeys } from '../redis-keys.js';
import { defineScript } from './define-script.js';
import { parseTransfers, POOL_LEDGER, poolKeys, type Transfer } from './pool-ledger.lua.js';
import { POOL_STATUS } from './quota-status.js';

const SOURCE = `--[[
  What a healing pass needs of the pool, read together: whether transfers may
  start (or why not), the ledger's incarnation, the lowest transfer id still
  in flight, and every transfer in flight.
  Input: KEYS[1] pool, KEYS[2] ledger, KEYS[3] layout (unused); no ARGV
  Output: {status (${POOL_STATUS.done} open, ${POOL_STATUS.frozen} a recount holds it, ${POOL_STATUS.uncounted} it needs one),
    Redis ms, incarnation ('' when none), lowest id, id, entry, id, entry...}
]]
${POOL_LEDGER}
local inc, why = open_pool()
local found, low = transfers()
local reply = {inc and ${POOL_STATUS.done} or why, REDIS_MS, redis.call('HGET', LEDGER, 'inc') or '', low}
for i = 1, #found do reply[#reply + 1] = found[i] end
return reply
`;

export interface PoolState {
  readonly status: typeof POOL_STATUS.done | typeof POOL_STATUS.frozen | typeof POOL_STATUS.uncounted;
  readonly incarnation: string;
  /** The lowest id of a transfer in flight, or the next id when none is. */
  readonly low: number;
  readonly transfers: readonly Transfer[];
}

const NAME = 'reading the session quota ledger';
const STATUSES: ReadonlySet<unknown> = new Set([POOL_STATUS.done, POOL_STATUS.frozen, POOL_STATUS.uncounted]);

export const poolReadScript = defineScript<void, PoolState, RedisLayoutKeys>({
  name: NAME,
  source: SOURCE,
  keys: poolKeys,
  args: () => [],
  parse: (reply) => {
    if (!Array.isArray(reply) || !STATUSES.has(reply[0]) || typeof reply[2] !== 'string' || typeof reply[3] !== 'number') throw new RedisReplyError(NAME, reply);
    return { status: reply[0] as PoolState['status'], incarnation: reply[2], low: reply[3], transfers: parseTransfers(NAME, reply.slice(4)) };
  },
});
