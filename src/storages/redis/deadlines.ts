import { Bounded, CoarseTimer } from '../../core/coarse-timer.js';
import { SessionStorageTimeoutError, SessionStorageUnavailableError } from '../../core/session-storage-errors.js';

/** What a Redis call that timed out was waiting for: no underlying error exists to give as cause. */
const TIMEOUT_DETAIL = 'Redis did not answer in time: stalled, overloaded or unreachable';

/** One bounded call: settled once, by its work, its deadline or close(), whichever comes first. */
class PendingCall extends Bounded {
  private settled = false;

  constructor(
    readonly operation: string,
    readonly reject: (error: Error) => void,
    private readonly onTimeout: (call: PendingCall) => void,
  ) {
    super();
  }

  /** Marks it settled; returns false when it already was. */
  settle(): boolean {
    if (this.settled) return false;
    this.settled = true;
    return true;
  }

  expire(): void {
    if (this.settle()) this.onTimeout(this);
  }
}

/**
 * Bounds every storage call by `timeout` ms, with one shared coarse timer
 * (see core/coarse-timer) instead of a timer per call, which would cost more
 * than the lookup itself on the hot path. A call is never failed before its
 * bound, and settles at most a quarter of it later.
 */
export class Deadlines {
  private readonly timer: CoarseTimer<PendingCall>;
  private closedWith: Error | undefined;
  /** When a call last timed out (performance.now()), if one has. */
  private lastTimeoutAt: number | undefined;
  /** False from a call's timeout until a later call succeeds: Redis (or the way to it) stalls meanwhile. */
  private answeredSinceTimeout = true;
  private readonly timedOut = (call: PendingCall): void => {
    this.lastTimeoutAt = performance.now();
    this.answeredSinceTimeout = false;
    call.reject(new SessionStorageTimeoutError(call.operation, this.timeout, TIMEOUT_DETAIL));
  };

  constructor(readonly timeout: number) {
    this.timer = new CoarseTimer(timeout);
  }

  /** Settles like `work`, with its failure described by `describeFailure`, or with a timeout error once the deadline passes. */
  bound<T, R = T>(work: Promise<T>, operation: string, describeFailure: (error: unknown) => Error, map?: (value: T) => R | PromiseLike<R>): Promise<R> {
    if (this.closedWith !== undefined) {
      work.catch(() => undefined);
      return Promise.reject(this.closedWith);
    }
    return new Promise<R>((resolve, reject) => {
      const call = new PendingCall(operation, reject, this.timedOut);
      this.timer.watch(call);
      work.then(
        (value) => {
          if (!call.settle()) return;
          this.timer.leave(call);
          this.answeredSinceTimeout = true;
          resolve(map === undefined ? (value as unknown as R) : map(value));
        },
        (error: unknown) => {
          if (!call.settle()) return;
          this.timer.leave(call);
          reject(describeFailure(error));
        },
      );
    });
  }

  /** Rejects every pending call with `error` and refuses new ones. */
  close(error: Error = new SessionStorageUnavailableError('The session storage is closed')): void {
    this.closedWith = error;
    for (const call of this.timer.clear()) if (call.settle()) call.reject(error);
  }

  /**
   * Whether calls are answered: false once one has outlived its bound, until
   * a later one succeeds. A connection that stays open while Redis (or the
   * network) stalls reads as up to the client; this reads as down.
   */
  get answering(): boolean {
    return this.answeredSinceTimeout;
  }

  /** Whether a call timed out within the last `timeout` ms: Redis is likely not answering now. */
  get timedOutRecently(): boolean {
    return this.lastTimeoutAt !== undefined && performance.now() - this.lastTimeoutAt < this.timeout;
  }
}
