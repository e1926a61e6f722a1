import { ENTRY, ENTRY_TYPE } from '../redis-stream-entry.js';
import { NO_DEADLINE } from '../redis-keys.js';

/**
 * Lua shared by the scripts that append transitions (create, destroy, sweep,
 * release). They expect KEYS = [sessions, events, sequence, origins]
 * (see transitionKeys; scripts that need the quota keys take them after) and ARGV[1..4] = origin, now, maxlen, fence.
 * A script opens with APPEND_PRELUDE; it appends with {@link appendEntry}
 * inline, or with the functions of APPEND_FUNCTIONS (a batch, a rare path).
 *
 * It reads Redis's clock first: a script whose fence (the caller's deadline
 * on Redis's clock; 0 for none) has passed may run after its caller was told
 * it failed, so it changes nothing (FENCED); transition replies carry the
 * clock so the instance keeps learning it (RedisClock).
 *
 * Redis does not roll back a script that fails midway, so a script undoes
 * by hand what it wrote before a command that failed: the sequence is one
 * INCR, taken back (DECR) when its XADD fails (a stream key of the wrong
 * type, an entry Redis refuses), so that no hole is left in it; a change
 * made before its event (create's ZADD NX, which says by itself whether the
 * member is new) is undone when `added` is set. Each transition so runs the
 * fewest commands it can: TIME, the change, INCR, the origin's HGET, XADD.
 *
 * What a script costs inside Redis beyond its commands is mostly Lua's own
 * work (measured in instructions with callgrind, docs/performance.md): a
 * closure made per call, a table of arguments built and unpacked, a number
 * parsed from a string. So the common paths make none: they append inline,
 * each shape of entry is an XADD of its own, and the clock is compared and
 * handed on as the digit strings TIME gives.
 *
 * Origins are interned: a 36-character instance id would be half of each
 * entry. The origins hash maps `i:<instance id>` to a small code, `c:<code>`
 * back to the id, and `n` to the last code given; an instance's first write
 * registers it. Readers resolve codes they have not seen with one HMGET.
 */
export const APPEND_PRELUDE = `
local ORIGIN, NOW, MAXLEN, FENCE = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
-- Redis's clock as TIME gives it, seconds and microseconds: the reply carries both digit strings as they are
-- (the instance makes them ms), and whole seconds compare as strings of one length, with no number parsed.
local CLOCK = redis.call('TIME')
local SECONDS, MICROS = CLOCK[1], CLOCK[2]
local FENCED
${pastFence('FENCE', 'FENCED')}
-- This instance's origin code, once looked up (or registered).
local origin_code
-- The sequence number of the last entry appended (0: none), for the replies of create and destroy.
local LAST_SEQUENCE = 0
`;

/**
 * Lua that sets `to` to whether Redis's clock (SECONDS, MICROS of
 * APPEND_PRELUDE) is past `fence` (ms, a digit string; '0' none). Whole
 * seconds compare as digit strings of one length, with no number parsed;
 * within the fence's second, or with lengths that differ, as numbers.
 */
export function pastFence(fence: string, to: string): string {
  return `if ${fence} == '0' then
  ${to} = false
else
  local fence_seconds = string.sub(${fence}, 1, -4)
  if #fence_seconds == #SECONDS and fence_seconds ~= SECONDS then
    ${to} = SECONDS > fence_seconds
  else
    ${to} = tonumber(SECONDS) * 1000 + math.floor(tonumber(MICROS) / 1000) > tonumber(${fence})
  end
end`;
}

/**
 * Appends the entry of a transition, inline: `kind`, `member` and
 * `deadline` (the idle deadline to record; nil or NO_DEADLINE records none)
 * are Lua expressions, `added` (one too) whether the member was just added to the
 * sorted set (it is removed again if the XADD fails; the script then fails
 * with the XADD's error). Sets the Lua local `id` to the entry's id (declared
 * by the caller) and LAST_SEQUENCE to its sequence number, taken as
 * `sequence` says.
 */
export function appendEntry(kind: string, member: string, deadline: string, added: string, sequence: SequenceTaking = INCR_EACH): string {
  return `do
  local kind, member, deadline = ${kind}, ${member}, ${deadline}
  ${sequence.take}
  if not origin_code then
    origin_code = redis.call('HGET', KEYS[4], 'i:' .. ORIGIN)
    if not origin_code then
      origin_code = redis.call('HINCRBY', KEYS[4], 'n', 1)
      redis.call('HSET', KEYS[4], 'i:' .. ORIGIN, origin_code, 'c:' .. origin_code, ORIGIN)
    end
  end
  local sep = string.find(member, ':', 1, true)
  if deadline == nil or deadline == '${NO_DEADLINE}' then
    if sep then
      ${xadd('string.sub(member, sep + 1)', 'string.sub(member, 1, sep - 1)', false)}
    else
      ${xadd('member', undefined, false)}
    end
  elseif sep then
    ${xadd('string.sub(member, sep + 1)', 'string.sub(member, 1, sep - 1)', true)}
  else
    ${xadd('member', undefined, true)}
  end
  if type(id) == 'table' then
    ${sequence.giveBack}
    ${added === 'false' ? '-- nothing else to undo' : `if ${added} then redis.call('ZREM', KEYS[1], member) end`}
    error(id)
  end
  LAST_SEQUENCE = n
end`;
}

/** How an append takes its entry's sequence number into the Lua local `n`, and gives it back when its XADD fails. */
export interface SequenceTaking {
  readonly take: string;
  readonly giveBack: string;
}

/** One INCR of the sequence key per entry: a script that appends one entry, or a few. */
export const INCR_EACH: SequenceTaking = { take: "local n = redis.call('INCR', KEYS[3])", giveBack: "redis.call('DECR', KEYS[3])" };

/**
 * From the Lua local SEQUENCE, read once with GET before the first append
 * and written back once with SET after the last (a batch: one command each
 * rather than one per entry). A script cannot be interleaved with another
 * client's command, so this is the INCRs it replaces.
 */
export const SEQUENCE_LOCAL: SequenceTaking = { take: 'local n = SEQUENCE + 1\n  SEQUENCE = n', giveBack: 'SEQUENCE = n - 1' };

/** One XADD of an entry, its session and auth key ids as Lua expressions: no table of arguments to build and unpack. */
function xadd(sessionId: string, authKeyId: string | undefined, withDeadline: boolean): string {
  const auth = authKeyId === undefined ? '' : `, '${ENTRY.authKeyId}', ${authKeyId}`;
  const deadline = withDeadline ? `, '${ENTRY.deadline}', deadline` : '';
  return `id = redis.pcall('XADD', KEYS[2], 'MAXLEN', '~', MAXLEN, '*', '${ENTRY.type}', kind, '${ENTRY.sessionId}', ${sessionId}${auth}, `
    + `'${ENTRY.originCode}', origin_code, '${ENTRY.sequence}', n${deadline})`;
}

/**
 * The functions of the rare paths and the batches, after APPEND_PRELUDE:
 * each is a closure Lua makes when the script reaches it, so the common paths
 * (which append inline) come before it.
 */
export const APPEND_FUNCTIONS = appendFunctions(INCR_EACH);

/** APPEND_FUNCTIONS, taking sequence numbers as `sequence` says. */
export function appendFunctions(sequence: SequenceTaking): string {
  return `
-- Appends an entry; returns its id. added: the member was just added, and is removed again if the XADD fails.
local function append(kind, member, deadline, added)
  local id
  ${appendEntry('kind', 'member', 'deadline', 'added', sequence)}
  return id
end
-- Expires up to limit lapsed sessions, appending their ids to ids; returns how many.
local function expire_lapsed(limit, ids)
  local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', NOW, 'LIMIT', 0, limit)
  for _, member in ipairs(lapsed) do
    ids[#ids + 1] = append('${ENTRY_TYPE.expired}', member)
    redis.call('ZREM', KEYS[1], member)
  end
  return #lapsed
end
`;
}

/** The arguments every script that appends transitions takes first, in this order. */
export interface AppendArgs {
  /** The instance id recorded as the events' origin. */
  readonly origin: string;
  /** The clock's now, ms. */
  readonly now: number;
  /** The stream's approximate MAXLEN. */
  readonly maxLength: number;
  /** The caller's deadline on Redis's clock (ms): past it the script refuses (0: never). */
  readonly fence: number;
}

/** ARGV in order: the AppendArgs, then the script's own. */
export function appendArgs(a: AppendArgs, ...own: string[]): string[] {
  return [a.origin, String(a.now), String(a.maxLength), String(Math.floor(a.fence)), ...own];
}

/** The arguments of the scripts that expire a batch of lapsed sessions. */
export interface BatchArgs extends AppendArgs {
  /** The most sessions one call expires. */
  readonly batch: number;
}
