import { NO_DEADLINE } from '../redis-keys.js';
import { ENTRY_TYPE } from '../redis-stream-entry.js';
import { APPEND_PRELUDE, appendArgs, appendEntry, type AppendArgs } from './append-event.lua.js';
import { defineScript, transitionKeys } from './define-script.js';
import { transitionReply, type TransitionReply } from './transition-reply.js';
import { TRANSITION } from './transition-status.js';

const SOURCE = `--[[
  Destroys a session, with its destroyed event; a lapsed one is expired instead.
  Input:
    KEYS[1] sessions, KEYS[2] events, KEYS[3] sequence, KEYS[4] origins
    ARGV[1] origin, ARGV[2] now (ms), ARGV[3] maxlen (MAXLEN ~), ARGV[4] fence (Redis ms; 0 none)
    ARGV[5] member
  Output: {status, Redis's clock (TIME's seconds and microseconds), the event's sequence number (0: none), event ids...}; status ${TRANSITION.done} destroyed,
    ${TRANSITION.unchanged} nothing to destroy (a lapsed session's expiry id follows),
    ${TRANSITION.fenced} past the fence (nothing changed)
]]
${APPEND_PRELUDE}
if FENCED then return {${TRANSITION.fenced}, SECONDS, MICROS, 0} end
local member = ARGV[5]
local score = redis.call('ZSCORE', KEYS[1], member)
if not score then return {${TRANSITION.unchanged}, SECONDS, MICROS, 0} end
-- A session with no deadline never lapses: its score compared as the text ZSCORE gives, with no number parsed.
local lapsed = score ~= '${NO_DEADLINE}' and tonumber(score) <= tonumber(NOW)
local id
${appendEntry(`lapsed and '${ENTRY_TYPE.expired}' or '${ENTRY_TYPE.destroyed}'`, 'member', 'nil', 'false')}
redis.call('ZREM', KEYS[1], member)
return {lapsed and ${TRANSITION.unchanged} or ${TRANSITION.done}, SECONDS, MICROS, LAST_SEQUENCE, id}
`;

export interface DestroyArgs extends AppendArgs {
  readonly member: string;
}

export const destroySessionScript = defineScript<DestroyArgs, TransitionReply>({
  name: 'destroySession',
  source: SOURCE,
  keys: transitionKeys,
  args: (a) => appendArgs(a, a.member),
  parse: transitionReply('destroySession'),
});
