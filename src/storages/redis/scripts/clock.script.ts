import { defineScript, integerReply } from './define-script.js';

const SOURCE = `--[[
  Redis's clock, on the node that holds KEYS[1] (a key group's, or the pool).
  Input: KEYS[1] a key on that node (not read)
  Output: the time in ms
]]
local t = redis.call('TIME')
return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

export const clockScript = defineScript<void, number, string>({
  name: 'reading the Redis clock',
  source: SOURCE,
  keys: (key) => [key],
  args: () => [],
  parse: integerReply('reading the Redis clock'),
});
