/**
 * One coarse timer for many waits that share a bound: Redis calls bounded by
 * `commandTimeout`, observers bounded by `observerTimeout`. A timer per wait
 * would cost more than the wait itself on the hot path (a lookup).
 *
 * Design. Watched items go into the open bucket. Each tick closes the open
 * bucket, stamping it with the clock read at that tick: every item in it was
 * watched before that stamp. A closed bucket expires at the first tick at
 * least `timeout` after its stamp, so no item ever expires before its bound
 * (ticks may run late, never early, with respect to the stamp). An item
 * expires between `timeout` and `timeout * (1 + 2 / TICKS)` after it was
 * watched, plus however late the event loop runs the tick.
 *
 * An item that settles in time leaves its bucket in O(1) (the bucket's last
 * item takes its place), so nothing settled is kept for seconds. The interval
 * runs only while something is watched, and is unref'd: it never keeps a
 * process alive by itself.
 */

/** Ticks per timeout; more ticks expire items closer to their bound, at the cost of more wake-ups. */
const TICKS = 8;

/** Something a {@link CoarseTimer} bounds. */
export abstract class Bounded {
  /** The bucket that holds this item while it is watched; the timer's own bookkeeping. */
  timerBucket: Bounded[] | undefined = undefined;
  /** This item's place in {@link timerBucket}; the timer's own bookkeeping. */
  timerIndex = 0;

  /** Called once, when the bound has passed and the item has not left. Must not throw. */
  abstract expire(): void;
}

/** A closed bucket: its items, and the clock at the tick that closed it (all were watched before). */
interface ClosedBucket<T> {
  readonly items: T[];
  readonly closedAt: number;
}

/** Bounds many items by one shared timeout, with one interval for all of them. */
export class CoarseTimer<T extends Bounded = Bounded> {
  /** Where items are watched now. */
  private open: T[] = [];
  /** Buckets closed by earlier ticks, oldest first. */
  private closed: ClosedBucket<T>[] = [];
  private watched = 0;
  private interval: ReturnType<typeof setInterval> | undefined;

  constructor(readonly timeout: number) {}

  /** Starts bounding `item`: its `expire()` is called once `timeout` ms have passed, unless it {@link leave}s first. */
  watch(item: T): void {
    const bucket = this.open;
    item.timerBucket = bucket;
    item.timerIndex = bucket.length;
    bucket.push(item);
    this.watched++;
    if (this.interval === undefined) {
      this.interval = setInterval(() => this.tick(), Math.max(1, Math.ceil(this.timeout / TICKS)));
      this.interval.unref();
    }
  }

  /** Stops bounding an item that settled in time; does nothing for one not watched (expired, cleared, or never watched). */
  leave(item: T): void {
    const bucket = item.timerBucket;
    if (bucket === undefined) return;
    item.timerBucket = undefined;
    const last = bucket.pop()!;
    if (last !== item) {
      bucket[item.timerIndex] = last;
      last.timerIndex = item.timerIndex;
    }
    this.watched--;
  }

  /** Stops the interval and hands back every item still watched, none of them expired. */
  clear(): T[] {
    const items = this.closed.flatMap((bucket) => bucket.items).concat(this.open);
    for (const item of items) item.timerBucket = undefined;
    this.closed = [];
    this.open = [];
    this.watched = 0;
    this.stop();
    return items;
  }

  private tick(): void {
    const now = performance.now();
    if (this.open.length > 0) {
      this.closed.push({ items: this.open, closedAt: now });
      this.open = [];
    }
    while (this.closed.length > 0 && now - this.closed[0]!.closedAt >= this.timeout) {
      const { items } = this.closed.shift()!;
      this.watched -= items.length;
      // Detached first: an item that expires may watch a new one, or leave.
      for (const item of items) item.timerBucket = undefined;
      for (const item of items) item.expire();
    }
    if (this.watched === 0) {
      // Only emptied buckets are left: drop them with the interval.
      this.closed = [];
      this.stop();
    }
  }

  private stop(): void {
    if (this.interval === undefined) return;
    clearInterval(this.interval);
    this.interval = undefined;
  }
}
