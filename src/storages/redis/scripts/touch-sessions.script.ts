import { RedisReplyError } from '../redis-reply-error.js';
import type { RedisSessionKeys } from '../redis-keys.js';
import { defineScript } from './define-script.js';

const SOURCE = `--[[
  Lookups with a bounded touch, one session or many (a replica's background
  touches): a deadline is rewritten only when less than idleTimeout is left,
  so a busy session costs one write per touch slack.
  Input:
    KEYS[1] sessions
    ARGV[1] now (ms), ARGV[2] idleTimeout (ms), ARGV[3] the new deadline (ms)
    ARGV[4...] members
  Output: {deadline...}: each member's deadline after the touch, 0 where it is not live
]]
local now, idle, fresh = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local deadlines = {}
for i = 4, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  local deadline = score and tonumber(score) or 0
  if deadline <= now then
    deadline = 0
  elseif deadline - now < idle then
    redis.call('ZADD', KEYS[1], 'XX', fresh, ARGV[i])
    deadline = tonumber(fresh)
  end
  deadlines[#deadlines + 1] = deadline
end
return deadlines
`;

export interface TouchArgs {
  readonly now: number;
  readonly idleTimeout: number;
  /** The deadline written where less than idleTimeout is left. */
  readonly deadline: number;
  readonly members: readonly string[];
}

/** Resolves each member's deadline after the touch (ms), 0 where not live. */
export const touchSessionsScript = defineScript<TouchArgs, number[]>({
  name: 'hasSession',
  source: SOURCE,
  // A touch reads and writes the sorted set alone: the lookup path sends no other key.
  keys: (keys: RedisSessionKeys) => [keys.sessions],
  args: (a) => [String(a.now), String(a.idleTimeout), String(a.deadline), ...a.members],
  parse: (reply) => {
    if (!Array.isArray(reply) || !reply.every((deadline) => typeof deadline === 'number')) throw new RedisReplyError('hasSession', reply);
    return reply as number[];
  },
});
