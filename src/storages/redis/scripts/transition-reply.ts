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

/** Parses `{status, Redis ms, last sequence number, event ids...}`. */
export function transitionReply(name: string): (reply: unknown) => TransitionReply {
  return (reply) => {
    if (!Array.isArray(reply) || !isTransitionStatus(reply[0]) || typeof reply[1] !== 'number' || typeof reply[2] !== 'number') {
      throw new RedisReplyError(name, reply);
    }
    for (let i = 3; i < reply.length; i++) if (typeof reply[i] !== 'string') throw new RedisReplyError(name, reply);
    // The common reply appends one event: no spread, no copy beyond it.
    const eventIds = reply.length === 4 ? [reply[3] as string] : (reply.slice(3) as string[]);
    return { status: reply[0], redisMs: reply[1], lastSequence: reply[2], eventIds };
  };
}
