import { SessionStorageTimeoutError, SessionStorageUnavailableError } from '../../core/session-storage-errors.js';

interface Pending {
  settled: boolean;
  readonly operation: string;
  readonly reject: (error: Error) => void;
  /** The bucket that holds it and its place there, so a settled call leaves at once (nothing retained for seconds). */
  bucket: Pending[];
  index: number;
}

/** Removes a settled call from its bucket in O(1): the last entry takes its place. */
function leave(pending: Pending): void {
  const bucket = pending.bucket;
  const last = bucket.pop()!;
  if (last !== pending) {
    bucket[pending.index] = last;
    last.index = pending.index;
  }
}

/** What a Redis call that timed out was waiting for: no underlying error exists to give as cause. */
const TIMEOUT_DETAIL = 'Redis did not answer in time: stalled, overloaded or unreachable';

/** How many ticks make up one timeout; an operation times out after between (TICKS - 1) and TICKS ticks. */
const TICKS_PER_TIMEOUT = 4;

/**
 * Bounds every storage call with one shared coarse timer instead of a timer
 * per call, which would cost more than the lookup itself on the hot path.
 * A call settles within `timeout` ms either way.
 */
export class Deadlines {
  /** Calls started in each of the last ticks, newest last. */
  private readonly buckets: Pending[][] = [[]];
  private readonly timer: NodeJS.Timeout;
  private closedWith: Error | undefined;
  /** When a call last timed out (ms), if one has. */
  private lastTimeoutAt: number | undefined;

  constructor(readonly timeout: number) {
    this.timer = setInterval(() => this.tick(), Math.max(1, Math.floor(timeout / TICKS_PER_TIMEOUT)));
    // A bounded call must not keep the process alive by itself.
    this.timer.unref();
  }

  /** Settles like `work`, with its failure described by `describeFailure`, or with a timeout error once the deadline passes. */
  bound<T, R = T>(work: Promise<T>, operation: string, describeFailure: (error: unknown) => Error, map?: (value: T) => R): Promise<R> {
    if (this.closedWith !== undefined) {
      work.catch(() => undefined);
      return Promise.reject(this.closedWith);
    }
    return new Promise<R>((resolve, reject) => {
      const bucket = this.buckets[this.buckets.length - 1]!;
      const pending: Pending = { settled: false, operation, reject, bucket, index: bucket.length };
      bucket.push(pending);
      work.then(
        (value) => {
          if (pending.settled) return;
          pending.settled = true;
          leave(pending);
          resolve(map === undefined ? (value as unknown as R) : map(value));
        },
        (error: unknown) => {
          if (pending.settled) return;
          pending.settled = true;
          leave(pending);
          reject(describeFailure(error));
        },
      );
    });
  }

  /** Rejects every pending call with `error` and refuses new ones. */
  close(error: Error = new SessionStorageUnavailableError('The session storage is closed')): void {
    clearInterval(this.timer);
    this.closedWith = error;
    for (const bucket of this.buckets.splice(0)) expire(bucket, () => error);
    this.buckets.push([]);
  }

  /** Whether a call timed out within the last `timeout` ms: Redis is likely not answering now. */
  get timedOutRecently(): boolean {
    return this.lastTimeoutAt !== undefined && Date.now() - this.lastTimeoutAt < this.timeout;
  }

  private tick(): void {
    this.buckets.push([]);
    if (this.buckets.length <= TICKS_PER_TIMEOUT) return;
    const expired = this.buckets.shift()!;
    if (expire(expired, (pending) => new SessionStorageTimeoutError(pending.operation, this.timeout, TIMEOUT_DETAIL)) > 0) this.lastTimeoutAt = Date.now();
  }
}

/** Rejects the bucket's unsettled calls; returns how many. */
function expire(bucket: Pending[], errorFor: (pending: Pending) => Error): number {
  let expired = 0;
  for (const pending of bucket) {
    if (pending.settled) continue;
    pending.settled = true;
    pending.reject(errorFor(pending));
    expired++;
  }
  return expired;
}
