/**
 * Lua shared by the scripts that keep a key group's side of the quota ledger
 * (see redis-session-quota.ts): the group's grants hash, which says which
 * transfers the group took part in, and which pool it takes them from.
 *
 * Fields of the grants hash:
 * - `pool`: the incarnation of the pool ledger whose transfers the group
 *   accepts, written by a recount. Absent: never counted (a new group, one
 *   whose data was lost, or one an earlier version wrote); the group then
 *   accepts any, and the next healing pass recounts.
 * - `<incarnation>:<id>`: a mark, one per transfer the group decided on:
 *   `+<amount>:<fence>` received grant, `-<amount>:<fence>` released for a
 *   reclaim, `x0:<fence>` refused for good (a fence that passed first). A
 *   transfer is decided once: whoever comes second (a late create, a healer)
 *   reads the mark.
 *
 * A mark is forgotten once nothing can ask for it again: its fence has passed
 * (so no script of its call can still run) and its transfer is no longer in
 * the pool's ledger (its id is below the ledger's lowest, or it belongs to
 * another incarnation of the ledger).
 */
export const QUOTA_MARKS = `
local function mark_field(inc, id) return inc .. ':' .. id end
-- The mark's kind ('+', '-', 'x') and amount, or nil.
local function read_mark(grants, inc, id)
  local mark = redis.call('HGET', grants, mark_field(inc, id))
  if not mark then return nil end
  return string.sub(mark, 1, 1), tonumber(string.match(mark, '^.(%d+):'))
end
local function write_mark(grants, inc, id, kind, amount, fence)
  redis.call('HSET', grants, mark_field(inc, id), kind .. amount .. ':' .. fence)
end
-- Whether the group takes transfers of the ledger incarnation inc.
local function accepts(grants, inc)
  local accepted = redis.call('HGET', grants, 'pool')
  return (not accepted) or accepted == inc
end
-- Forgets the marks of other incarnations, and those of inc below id low whose fence has passed (now: Redis ms).
local function forget_marks(grants, inc, low, now)
  local fields = redis.call('HGETALL', grants)
  local forget = {}
  for i = 1, #fields, 2 do
    local mark_inc, id = string.match(fields[i], '^(.*):(%d+)$')
    if mark_inc then
      local fence = tonumber(string.match(fields[i + 1], ':(%d+)$')) or 0
      if mark_inc ~= inc or (tonumber(id) < low and fence < now) then forget[#forget + 1] = fields[i] end
    end
  end
  if #forget > 0 then redis.call('HDEL', grants, unpack(forget)) end
end
`;
