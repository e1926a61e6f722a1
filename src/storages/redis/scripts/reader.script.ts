import { RedisReplyError } from '../redis-reply-error.js';
import type { StreamAfter, StreamStart } from '../redis-stream-entry.js';
import { defineScript, isCount, readerKeys } from './define-script.js';

const START_SOURCE = `--[[
  Where a reader starts: the stream's last entry, the sequence so far and the
  loss epoch, read together.
  Input: KEYS[1] events, KEYS[2] sequence, KEYS[3] epoch
  Output: {last entry id ('0-0' for an empty stream), sequence, epoch}
]]
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
return {last[1] and last[1][1] or '0-0', redis.call('GET', KEYS[2]) or '0', redis.call('GET', KEYS[3]) or '0'}
`;

const AFTER_SOURCE = `--[[
  What a reader back from a break needs, read together.
  Input: KEYS[1] events, KEYS[2] sequence, KEYS[3] epoch (unused); ARGV[1] the reader's position
  Output: {1 if an entry follows the position else 0, last entry id, sequence}
]]
local next = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', 1)
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
return {next[1] and 1 or 0, last[1] and last[1][1] or '0-0', redis.call('GET', KEYS[2]) or '0'}
`;

export const readerStartScript = defineScript<void, StreamStart>({
  name: 'the stream end',
  source: START_SOURCE,
  keys: readerKeys,
  args: () => [],
  parse: (reply) => {
    if (!Array.isArray(reply) || typeof reply[0] !== 'string' || !isCount(reply[1]) || !isCount(reply[2])) throw new RedisReplyError('the stream end', reply);
    return { position: reply[0], sequence: BigInt(reply[1]), epoch: BigInt(reply[2]) };
  },
});

export const readerAfterScript = defineScript<{ readonly position: string }, StreamAfter>({
  name: 'the stream after a break',
  source: AFTER_SOURCE,
  keys: readerKeys,
  args: (a) => [a.position],
  parse: (reply) => {
    if (!Array.isArray(reply) || typeof reply[1] !== 'string' || !isCount(reply[2])) throw new RedisReplyError('the stream after a break', reply);
    return { nextExists: reply[0] === 1, lastId: reply[1], sequence: BigInt(reply[2]) };
  },
});
