import type { RedisSessionKeys } from '../redis-keys.js';
import { defineScript, integerReply } from './define-script.js';

const SOURCE = `--[[
  An instance's heartbeat in a key group's origins hash (see APPEND_PRELUDE for
  the hash): t:<instance id> = now on Redis's clock, written only if the
  instance is registered (an instance that never wrote adds nothing). Then
  whether a prune of the hash is due: the field p holds when the last one
  began, whoever ran it, so the fleet prunes each hash once per interval
  however many instances it has; the caller that gets 1 has taken this turn
  (p = now) and runs the prune (origins-prune.script).
  Input:
    KEYS[1] origins
    ARGV[1] instance id, ARGV[2] the prune interval, ms (0: due now)
  Output: 1 a prune is due and the caller runs it, 0 not
]]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
if redis.call('HEXISTS', KEYS[1], 'i:' .. ARGV[1]) == 1 then redis.call('HSET', KEYS[1], 't:' .. ARGV[1], now) end
local last = tonumber(redis.call('HGET', KEYS[1], 'p') or '')
if last and now - last < tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'p', now)
return 1
`;

/** Records this instance's heartbeat in a group's origins hash; resolves 1 when this instance is to prune the hash now. */
export const originsHeartbeatScript = defineScript<{ readonly instanceId: string; readonly pruneInterval: number }, number, RedisSessionKeys>({
  name: 'the origins heartbeat',
  source: SOURCE,
  keys: (keys) => [keys.origins],
  args: (a) => [a.instanceId, String(a.pruneInterval)],
  parse: integerReply('the origins heartbeat'),
});
