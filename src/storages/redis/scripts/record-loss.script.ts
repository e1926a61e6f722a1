import { RedisReplyError } from '../redis-reply-error.js';
import { ENTRY, ENTRY_TYPE } from '../redis-stream-entry.js';
import { defineScript, isCount, readerKeys } from './define-script.js';

/**
 * Records, for every instance, that Redis lost acknowledged history.
 *
 * Only an instance that had read the lost entries can tell: after a restore
 * from an older snapshot, or a Cluster failover to a replica that lagged,
 * the sequence numbers go on seamlessly from the older state, so an instance
 * that had not read past it sees nothing wrong. The instance that finds the
 * sequence gone back appends a loss entry, read like any other entry, in
 * order, by every instance, lagging ones included.
 *
 * The epoch key says how many losses were recorded, so that several
 * instances that find the same loss record it once: an instance passes the
 * epoch it knows, and the script records a new one unless Redis already holds
 * a newer epoch (another instance got there first: its entry is in the
 * stream). A restore or a failover takes the epoch key back too; then the
 * known epoch is the newer one, and the new epoch is one past it, so an
 * epoch never repeats for the instances that saw it.
 */
const SOURCE = `--[[
  Appends a loss entry unless another instance recorded a newer loss.
  Input:
    KEYS[1] events, KEYS[2] sequence, KEYS[3] epoch
    ARGV[1] the epoch the reader knows, ARGV[2] origin (instance id), ARGV[3] maxlen
  Output: {1, epoch, entry id} when recorded, {0, epoch} when another instance had
]]
local current = tonumber(redis.call('GET', KEYS[3]) or '0')
local known = tonumber(ARGV[1])
if current > known then return {0, tostring(current)} end
local epoch = math.max(current, known) + 1
local n = (tonumber(redis.call('GET', KEYS[2])) or 0) + 1
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*',
  '${ENTRY.type}', '${ENTRY_TYPE.loss}', '${ENTRY.epoch}', epoch, '${ENTRY.origin}', ARGV[2], '${ENTRY.sequence}', n)
redis.call('SET', KEYS[2], n)
redis.call('SET', KEYS[3], epoch)
return {1, tostring(epoch), id}
`;

export interface RecordLossArgs {
  /** The loss epoch the reader knows. */
  readonly epoch: bigint;
  readonly origin: string;
  readonly maxLength: number;
}

/** Whether this call recorded the loss (else another instance had), and the epoch Redis now holds. */
export const recordLossScript = defineScript<RecordLossArgs, { recorded: boolean; epoch: bigint }>({
  name: 'recording lost history',
  source: SOURCE,
  keys: readerKeys,
  args: (a) => [String(a.epoch), a.origin, String(a.maxLength)],
  parse: (reply) => {
    if (!Array.isArray(reply) || (reply[0] !== 0 && reply[0] !== 1) || !isCount(reply[1])) throw new RedisReplyError('recording lost history', reply);
    return { recorded: reply[0] === 1, epoch: BigInt(reply[1]) };
  },
});
