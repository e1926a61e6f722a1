import type { RedisLayoutKeys } from '../redis-keys.js';
import { defineScript, integerReply } from './define-script.js';

const TAKE_SOURCE = `--[[
  Takes quota from the pool for one group: at most ARGV[1], and at most an
  even share of what is left over ARGV[2] groups (at least 1), so that near
  the limit the groups hold little unused quota.
  Input: KEYS[1] pool; ARGV[1] most, ARGV[2] groups
  Output: how much was taken (0: the pool is empty)
]]
local left = tonumber(redis.call('GET', KEYS[1]) or '0')
if left <= 0 then return 0 end
local n = math.min(left, tonumber(ARGV[1]), math.max(1, math.floor(left / tonumber(ARGV[2]))))
redis.call('DECRBY', KEYS[1], n)
return n
`;

const GIVE_SOURCE = `--[[
  Gives released quota back to the pool.
  Input: KEYS[1] pool; ARGV[1] amount
  Output: the pool after
]]
return redis.call('INCRBY', KEYS[1], ARGV[1])
`;

const poolKeys = (keys: RedisLayoutKeys): string[] => [keys.pool];

/** Resolves how much quota was taken (0: the pool is empty). */
export const poolTakeScript = defineScript<{ readonly most: number; readonly groups: number }, number, RedisLayoutKeys>({
  name: 'taking session quota',
  source: TAKE_SOURCE,
  keys: poolKeys,
  args: (a) => [String(a.most), String(a.groups)],
  parse: integerReply('taking session quota'),
});

export const poolGiveScript = defineScript<{ readonly amount: number }, number, RedisLayoutKeys>({
  name: 'returning session quota',
  source: GIVE_SOURCE,
  keys: poolKeys,
  args: (a) => [String(a.amount)],
  parse: integerReply('returning session quota'),
});
