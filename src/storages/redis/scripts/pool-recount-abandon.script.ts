import type { RedisLayoutKeys } from '../redis-keys.js';
import { defineScript, integerReply } from './define-script.js';
import { poolKeys } from './pool-ledger.lua.js';

const SOURCE = `--[[
  Ends a recount's hold on the pool without finishing it (it failed), if the
  hold is still its own; transfers start again at once rather than when the
  hold lapses.
  Input: KEYS[1] pool (unused), KEYS[2] ledger, KEYS[3] layout (unused); ARGV[1] recount id
  Output: 1 if the hold was this recount's, else 0
]]
if redis.call('HGET', KEYS[2], 'recount') ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[2], 'recount', 'until')
return 1
`;

export const poolRecountAbandonScript = defineScript<{ readonly id: string }, number, RedisLayoutKeys>({
  name: 'abandoning a session quota recount',
  source: SOURCE,
  keys: poolKeys,
  args: (a) => [a.id],
  parse: integerReply('abandoning a session quota recount'),
});
