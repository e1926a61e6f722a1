import { RedisReplyError } from '../redis-reply-error.js';
import { isTransitionStatus, type TransitionStatus } from './transition-status.js';

/** A transition script's reply: its status, Redis's clock when it ran (ms), and the ids of the events it appended. */
export interface TransitionReply {
  readonly status: TransitionStatus;
  readonly redisMs: number;
  readonly eventIds: readonly string[];
}

/** Parses `{status, Redis ms, event ids...}`. */
export function transitionReply(name: string): (reply: unknown) => TransitionReply {
  return (reply) => {
    if (!Array.isArray(reply) || !isTransitionStatus(reply[0]) || typeof reply[1] !== 'number' || !reply.every((id, i) => i < 2 || typeof id === 'string')) {
      throw new RedisReplyError(name, reply);
    }
    const [status, redisMs, ...eventIds] = reply as [TransitionStatus, number, ...string[]];
    return { status, redisMs, eventIds };
  };
}
