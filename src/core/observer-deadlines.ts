/** Something waited for that gives up when its deadline passes. */
export interface Expirable {
  /** Called once, when the deadline has passed and the item has not left. */
  expire(): void;
}

/** An item's place, so that one that settles in time leaves in O(1). */
export interface DeadlineEntry {
  item: Expirable;
  bucket: DeadlineEntry[];
  index: number;
}

/** Ticks per timeout: an item expires between `timeout` and `timeout * (1 + 1 / TICKS)` after it was watched. */
const TICKS = 4;

/**
 * Bounds waits for observers with one coarse timer instead of one per
 * observer call: items go into the bucket of the current tick, and a tick
 * expires the bucket that has waited a whole timeout. The timer stops at the
 * first tick that finds nothing watched; it is not restarted per item, which
 * would cost a timer per call.
 */
export class ObserverDeadlines {
  /** Items watched in each of the last ticks, newest last. */
  private buckets: DeadlineEntry[][] = [[]];
  private watched = 0;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(readonly timeout: number) {}

  watch(item: Expirable): DeadlineEntry {
    const bucket = this.buckets[this.buckets.length - 1]!;
    const entry: DeadlineEntry = { item, bucket, index: bucket.length };
    bucket.push(entry);
    this.watched++;
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.tick(), Math.max(1, Math.floor(this.timeout / TICKS)));
      // It never keeps a process alive by itself: one whose only work left is a hung observer may exit.
      this.timer.unref();
    }
    return entry;
  }

  /** Stops watching an item that settled in time. */
  leave(entry: DeadlineEntry): void {
    const bucket = entry.bucket;
    const last = bucket.pop()!;
    if (last !== entry) {
      bucket[entry.index] = last;
      last.index = entry.index;
    }
    this.watched--;
  }

  private tick(): void {
    this.buckets.push([]);
    if (this.buckets.length > TICKS + 1) {
      const expired = this.buckets.shift()!;
      this.watched -= expired.length;
      // Detached first: an item that expires may watch a new one.
      for (const entry of expired) entry.item.expire();
    }
    if (this.watched === 0 && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
      this.buckets = [[]];
    }
  }
}
