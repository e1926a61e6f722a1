import type { AuthKeyId, SessionId } from '../../core/session-id.js';
import type { Transition } from './redis-transition.js';

/** A create or destroy waiting to be sent, with what its outcome needs. */
export interface QueuedTransition {
  readonly create: boolean;
  /** The session's member in the sorted set, and its ids. */
  readonly member: string;
  readonly sessionId: SessionId;
  readonly authKeyId: AuthKeyId | undefined;
  /** The caller's deadline (local, localNow). */
  readonly deadline: number;
  resolve(outcome: Transition<boolean> | PromiseLike<Transition<boolean>>): void;
  reject(error: unknown): void;
}

/**
 * The creates and destroys of one key group issued in the same turn of the
 * event loop, sent together: whatever is queued before process.nextTick's
 * queue runs goes out at once, in the order issued, as one script per batch
 * of at most `maxBatch`: the calls of one callback, and those of the promise
 * reactions that run with it (replies resolving calls whose callers issue the
 * next ones). A lone call waits for nothing: it is sent in the same turn, as
 * before, and node-redis writes it with whatever else it has in its own
 * setImmediate. A burst pays Redis's and the client's cost of a command once
 * per batch rather than once per call.
 */
export class TransitionQueue {
  private calls: QueuedTransition[] = [];
  private readonly flush = (): void => {
    const calls = this.calls;
    this.calls = [];
    if (calls.length <= this.maxBatch) {
      this.sendOrFail(calls);
      return;
    }
    for (let from = 0; from < calls.length; from += this.maxBatch) this.sendOrFail(calls.slice(from, from + this.maxBatch));
  };

  constructor(
    /** Sends calls queued together, in order (one or more). */
    private readonly send: (calls: QueuedTransition[]) => void,
    private readonly maxBatch: number,
  ) {}

  /** No call is left unsettled, nor the batches after it unsent, whatever a send throws. */
  private sendOrFail(calls: QueuedTransition[]): void {
    try {
      this.send(calls);
    } catch (error) {
      for (const call of calls) call.reject(error);
    }
  }

  /** Queues a create or destroy; settles with its outcome. */
  add(create: boolean, member: string, sessionId: SessionId, authKeyId: AuthKeyId | undefined, deadline: number): Promise<Transition<boolean>> {
    return new Promise<Transition<boolean>>((resolve, reject) => {
      if (this.calls.length === 0) process.nextTick(this.flush);
      this.calls.push({ create, member, sessionId, authKeyId, deadline, resolve, reject });
    });
  }
}
