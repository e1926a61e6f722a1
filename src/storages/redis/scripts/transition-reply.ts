import { RedisReplyError } from '../redis-reply-error.js';
import { isTransitionStatus, type TransitionStatus } from './transition-status.js';

/** A transition script's reply: its status and the ids of the events it appended. */
export interface TransitionReply {
  readonly status: TransitionStatus;
  readonly eventIds: readonly string[];
}

/** Parses `{status, event ids...}`. */
export function transitionReply(name: string): (reply: unknown) => TransitionReply {
  return (reply) => {
    if (!Array.isArray(reply) || !isTransitionStatus(reply[0]) || !reply.every((id, i) => i === 0 || typeof id === 'string')) {
      throw new RedisReplyError(name, reply);
    }
    const [status, ...eventIds] = reply as [TransitionStatus, ...string[]];
    return { status, eventIds };
  };
}
