import { SessionLimitError, SessionStorageTimeoutError, SessionStorageUnavailableError } from '../../core/session-storage-errors.js';
import { sleep } from './backoff.js';
import type { Deadlines } from './deadlines.js';
import { localNow } from './redis-clock.js';
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

/**
 * Errors that say the command never left this process (the client was
 * offline or closed, or not ready) or that Redis ran it and answered with an
 * error (for the whole script, or for one call of a batch): either way it
 * cannot run later. Anything else, a connection that broke with the command
 * maybe on the wire, could still let it run.
 */
const NOT_PENDING = new Set(['ClientOfflineError', 'ClientClosedError', 'ErrorReply', 'SimpleError', 'BlobError', 'ReplyError', 'RedisClientNotReadyError', 'BatchItemError']);

function failedBeforeSending(error: unknown): boolean {
  return error instanceof Error && NOT_PENDING.has(error.constructor.name);
}

/**
 * A failed transition script's error, given no sooner than `deadline` (local)
 * when the script may have been sent: it could still run until its fence passes.
 */
export async function reportedFailure(error: unknown, deadline: number): Promise<unknown> {
  if (!failedBeforeSending(error)) await sleep(deadline - localNow());
  return error;
}

/**
 * A transition Redis refused past its fence: the error, given no sooner than
 * `deadline` (the fence errs early by how late this instance learnt Redis's clock).
 */
export async function refusedPastFence(commandTimeout: number, operation: string, deadline: number): Promise<SessionStorageTimeoutError> {
  await sleep(deadline - localNow());
  return new SessionStorageTimeoutError(operation, commandTimeout, 'Redis received it past its deadline and did not run it');
}

/** Throws what it is given: for a promise of an error that is to reject. */
export const rethrow = (error: unknown): never => {
  throw error;
};
