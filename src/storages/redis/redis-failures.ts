import { SessionLimitError, SessionStorageUnavailableError } from '../../core/session-storage-errors.js';
import type { Deadlines } from './deadlines.js';
import { RedisKeyLayoutError } from './redis-key-layout-error.js';
import { RedisReplyError } from './redis-reply-error.js';
import { connectionMessages } from './redis-storage.messages.js';

/**
 * A failed storage call's error as its caller sees it: the storage's own
 * typed errors as they are, anything else (a connection error, a Redis
 * error reply) as `SessionStorageUnavailableError` with it as cause.
 */
export function describeRedisFailure(error: unknown, operation: string): Error {
  if (error instanceof SessionLimitError || error instanceof SessionStorageUnavailableError || error instanceof RedisKeyLayoutError || error instanceof RedisReplyError) {
    return error;
  }
  return new SessionStorageUnavailableError(connectionMessages.unavailable(operation, error), { cause: error });
}

/** describeRedisFailure of a create and of a destroy, made once: these run once per transition. */
export const describeCreateFailure = (error: unknown): Error => describeRedisFailure(error, 'createSession');
export const describeDestroyFailure = (error: unknown): Error => describeRedisFailure(error, 'destroySession');

/** `work` bounded by commandTimeout, its failure described as above. */
export function bounded<T>(deadlines: Deadlines, work: Promise<T>, operation: string): Promise<T> {
  return deadlines.bound(work, operation, (error) => describeRedisFailure(error, operation));
}
