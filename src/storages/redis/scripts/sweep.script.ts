import { APPEND_FUNCTIONS, APPEND_PRELUDE, appendArgs, type BatchArgs } from './append-event.lua.js';
import { defineScript, idsReply, transitionKeys } from './define-script.js';

/** Sessions one sweep (or quota release) expires at most. */
export const SWEEP_BATCH = 1000;

const SOURCE = `--[[
  Expires up to a batch of lapsed sessions, with their expired events.
  Input:
    KEYS[1] sessions, KEYS[2] events, KEYS[3] sequence, KEYS[4] origins
    ARGV[1] origin, ARGV[2] now (ms), ARGV[3] maxlen (MAXLEN ~), ARGV[4] fence (0: not fenced)
    ARGV[5] batch: the most sessions to expire
  Output: {event ids...}
]]
${APPEND_PRELUDE}
${APPEND_FUNCTIONS}
local ids = {}
expire_lapsed(tonumber(ARGV[5]), ids)
return ids
`;

export const sweepScript = defineScript<BatchArgs, string[]>({
  name: 'expireIdleSessions',
  source: SOURCE,
  keys: transitionKeys,
  args: (a) => appendArgs(a, String(a.batch)),
  parse: idsReply('expireIdleSessions'),
});
