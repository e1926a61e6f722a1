import type { RedisSessionKeys } from '../redis-keys.js';
import { defineScript, integerReply } from './define-script.js';

const SOURCE = `--[[
  Redis's clock, on the node that holds a key group (KEYS[1] routes it).
  Input: KEYS[1] the group's sessions key (not read)
  Output: the time in ms
]]
local t = redis.call('TIME')
return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

export const clockScript = defineScript<void, number, RedisSessionKeys>({
  name: 'reading the Redis clock',
  source: SOURCE,
  keys: (keys) => [keys.sessions],
  args: () => [],
  parse: integerReply('reading the Redis clock'),
});
