import { SINGLE_UNRECORDED, type RecordedLayout } from '../redis-key-layout-error.js';
import { RedisReplyError } from '../redis-reply-error.js';
import type { RedisLayoutKeys } from '../redis-keys.js';
import { defineScript } from './define-script.js';

const SOURCE = `--[[
  Records the layout the first time and returns the recorded one, read and
  written together. It leaves the pool of a limit over several groups alone:
  a record may be missing after a partial loss (on a Cluster, the node of the
  prefix's tag restarted without data while the groups kept their quotas),
  where a full pool would let the sessions exceed the limit; the quota
  healer's recount fills the pool (see redis-session-quota.ts).
  Input:
    KEYS[1] layout, KEYS[2] pool (unused), KEYS[3] the one-group sessions, KEYS[4] the one-group events
    ARGV[1] layout name, ARGV[2] shards, ARGV[3] maxSessions (0: none)
  Output: {layout, shards, maxSessions} as recorded, or {'${SINGLE_UNRECORDED}'}
    when no layout is recorded but the one-group keys hold data and ARGV asks
    for more groups (data of a version before layouts were recorded)
]]
local recorded = redis.call('HMGET', KEYS[1], 'layout', 'shards', 'maxSessions')
if recorded[1] then return recorded end
if tonumber(ARGV[2]) > 1 and (redis.call('EXISTS', KEYS[3]) == 1 or redis.call('EXISTS', KEYS[4]) == 1) then
  return {'${SINGLE_UNRECORDED}'}
end
redis.call('HSET', KEYS[1], 'layout', ARGV[1], 'shards', ARGV[2], 'maxSessions', ARGV[3])
return {ARGV[1], ARGV[2], ARGV[3]}
`;

/** Resolves the recorded layout, or SINGLE_UNRECORDED (one-group data, no record, more groups asked for). */
export const layoutScript = defineScript<RecordedLayout, RecordedLayout | typeof SINGLE_UNRECORDED, RedisLayoutKeys>({
  name: 'the key layout',
  source: SOURCE,
  keys: (keys) => [keys.layout, keys.pool, keys.single.sessions, keys.single.events],
  args: (a) => [a.layout, String(a.shards), String(a.maxSessions)],
  parse: (reply) => {
    if (Array.isArray(reply) && reply.length === 1 && reply[0] === SINGLE_UNRECORDED) return SINGLE_UNRECORDED;
    if (!Array.isArray(reply) || reply.length !== 3 || !reply.every((field) => typeof field === 'string')) throw new RedisReplyError('the key layout', reply);
    const [layout, shards, maxSessions] = reply as [string, string, string];
    return { layout, shards: Number(shards), maxSessions: Number(maxSessions) };
  },
});
