import { RedisReplyError } from '../redis-reply-error.js';
import { isTransitionStatus, type TransitionStatus } from './transition-status.js';

/** A transition script's reply: its status, Redis's clock when it ran (ms), and the events it appended. */
export interface TransitionReply {
  readonly status: TransitionStatus;
  readonly redisMs: number;
  /** The sequence number of the last event appended (0 when none was). */
  readonly lastSequence: number;
  readonly eventIds: readonly string[];
}

/**
 * Parses `{status, TIME's seconds, TIME's microseconds, last sequence number, event ids...}`: the script
 * hands on TIME's two digit strings as they are, so the clock is made ms here, not in Lua.
 */
export function transitionReply(name: string): (reply: unknown) => TransitionReply {
  return (reply) => {
    if (!Array.isArray(reply) || !isTransitionStatus(reply[0]) || !isDigits(reply[1]) || !isDigits(reply[2]) || typeof reply[3] !== 'number') {
      throw new RedisReplyError(name, reply);
    }
    for (let i = 4; i < reply.length; i++) if (typeof reply[i] !== 'string') throw new RedisReplyError(name, reply);
    // The common reply appends one event: no spread, no copy beyond it.
    const eventIds = reply.length === 5 ? [reply[4] as string] : (reply.slice(4) as string[]);
    const redisMs = Number(reply[1]) * 1000 + Math.floor(Number(reply[2]) / 1000);
    return { status: reply[0], redisMs, lastSequence: reply[3], eventIds };
  };
}

/** TIME's fields: decimal digits, at most 16 (a safe integer once seconds are made ms). */
function isDigits(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= 16 && DIGITS.test(value);
}

const DIGITS = /^\d+$/;
