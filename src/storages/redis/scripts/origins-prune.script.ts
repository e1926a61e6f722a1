import { RedisReplyError } from '../redis-reply-error.js';
import type { RedisSessionKeys } from '../redis-keys.js';
import { defineScript } from './define-script.js';

const SOURCE = `--[[
  One step of a prune of a key group's origins hash (see APPEND_PRELUDE): an
  HSCAN batch from a cursor, each step short, so that a hash grown large (by
  a version before pruning) never blocks Redis for long. Each instance id in
  the batch whose heartbeat (t:<id>) is older than the TTL is dropped:
  i:<id>, c:<its code> and t:<id>. One registered with no heartbeat (written
  by an older version, or an instance yet to beat) gets t: = now, a full TTL.
  A heartbeat whose id is not registered goes once it is as old. Codes are
  never given again (n only grows): a reader's cached code never names
  another instance, and an instance dropped registers anew, with a new code,
  at its next write.
  Input:
    KEYS[1] origins
    ARGV[1] HSCAN cursor ('0' to begin), ARGV[2] TTL, ms, ARGV[3] HSCAN COUNT
  Output: {next cursor ('0': done), instance ids dropped}
]]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local oldest = now - tonumber(ARGV[2])
local scan = redis.call('HSCAN', KEYS[1], ARGV[1], 'COUNT', ARGV[3])
local fields = scan[2]
local dropped = 0
for k = 1, #fields, 2 do
  local field = fields[k]
  local kind, id = string.sub(field, 1, 2), string.sub(field, 3)
  if kind == 'i:' then
    local beat = redis.call('HGET', KEYS[1], 't:' .. id)
    if not beat then
      redis.call('HSET', KEYS[1], 't:' .. id, now)
    elseif (tonumber(beat) or 0) < oldest then
      redis.call('HDEL', KEYS[1], field, 'c:' .. fields[k + 1], 't:' .. id)
      dropped = dropped + 1
    end
  elseif kind == 't:' and (tonumber(fields[k + 1]) or 0) < oldest and redis.call('HEXISTS', KEYS[1], 'i:' .. id) == 0 then
    redis.call('HDEL', KEYS[1], field)
  end
end
return {scan[1], dropped}
`;

/** One prune step: the next HSCAN cursor ('0' once the whole hash was seen) and how many instance ids it dropped. */
export const originsPruneScript = defineScript<{ readonly cursor: string; readonly ttl: number; readonly count: number }, { cursor: string; dropped: number }, RedisSessionKeys>({
  name: 'pruning the origins',
  source: SOURCE,
  keys: (keys) => [keys.origins],
  args: (a) => [a.cursor, String(a.ttl), String(a.count)],
  parse: (reply) => {
    if (!Array.isArray(reply) || reply.length !== 2 || typeof reply[0] !== 'string' || typeof reply[1] !== 'number') throw new RedisReplyError('pruning the origins', reply);
    return { cursor: reply[0], dropped: reply[1] };
  },
});
