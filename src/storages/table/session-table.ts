/**
 * The compact session set behind `InMemorySessionStorage` and the Redis
 * storage's replica. Internal: not exported from the package root.
 *
 * Layout. A key is 2 (session id) or 4 (auth key id, session id) 32-bit words,
 * stored inline in an `Int32Array`; the all-zero key marks an empty slot, so the
 * one real all-zero key (session id 0, or the pair (0, 0)) lives in a flag of its
 * own. Keys live in segments (`table-segment.ts`): small linear-probing tables
 * of at most `MAX_SLOTS` slots, with a `Uint32Array` of deadlines beside them
 * when sessions expire. An extendible-hashing directory
 * (`segment-directory.ts`) picks the segment by the low bits of one seeded hash
 * (`key-codec.ts`); the position within it comes from another. A lookup
 * (`table-cursor.ts`) keeps where it found the key, for the operation that
 * follows.
 *
 * A segment that passes `MAX_LOAD` is rebuilt alone, about 1.125x larger, or
 * split in two, so the load of every segment stays within
 * [RESIZED_LOAD, MAX_LOAD] (0.71..0.8: 10..11.3 bytes per 8-byte key) at any
 * size, and the longest pause is one rebuild of at most 2^15 slots.
 *
 * Time is in ticks, passed to each call that needs it: `now` (the current
 * tick), a `deadline` (the tick an entry lapses after) and `keep` (the least
 * deadline a touch leaves). The table holds no clock of its own.
 */
import { TableCursor } from './table-cursor.js';
import { baseAt, capacityFor, MAX_SLOTS, type Segment } from './table-segment.js';

/** Called for each entry a sweep finds lapsed, just before it is removed; `authKeyId` is present in a scoped table. */
export type LapsedHandler = (sessionId: bigint, authKeyId: bigint | undefined) => void;

/**
 * A set of sessions, unscoped (width 2: the session id) or scoped (width 4: the
 * auth key id and the session id), with a deadline each when sessions expire:
 * its operations on a session found by {@link find}, and its sweeps.
 *
 * {@link find} keeps the session as the current key: the other per-key methods
 * ({@link insert}, {@link remove}, {@link isLapsed}, {@link deadlineOf},
 * {@link touch}) act on it without a second lookup. {@link insert} and
 * {@link remove} look it up again themselves when the table has changed since
 * (a removal, a sweep, a rebuild), so a caller never re-probes. The table never
 * calls out during a change except to its {@link LapsedHandler}, which must not
 * call back into it.
 */
export class SessionTable extends TableCursor {
  /** Whether entries have deadlines. */
  private readonly expiring: boolean;
  /** Entries over all segments, the all-zero key included. */
  private entries = 0;
  /** The all-zero key's deadline, an absolute tick. */
  private zeroDeadline = 0;

  /**
   * @param width 2 for sessions of no auth key, 4 for (auth key id, session id) pairs.
   * @param seeds Four random words that key the hash.
   * @param startTick The current tick when sessions expire (each entry then has a deadline); undefined when they do not.
   * @param onLapsed Told of each lapsed entry that a sweep removes.
   * @param maxSlots Segments at this size split instead of growing; smaller only in tests, to split often.
   */
  constructor(
    width: 2 | 4,
    seeds: Int32Array,
    startTick: number | undefined,
    private readonly onLapsed: LapsedHandler,
    maxSlots = MAX_SLOTS,
  ) {
    super(width, seeds, startTick !== undefined, startTick === undefined ? 0 : baseAt(startTick), maxSlots);
    this.expiring = startTick !== undefined;
  }

  /** Entries held, lapsed ones that no sweep has removed yet included. O(1). */
  get size(): number {
    return this.entries;
  }

  /** Segments so far, for a sweep that goes over them by index; a growing table adds segments at the end, never removes one. */
  get segmentCount(): number {
    return this.directory.segments.length;
  }

  /** Slots allocated in the segments from index `from` on (for sweep budgets and memory figures). */
  slotCount(from = 0): number {
    const segments = this.directory.segments;
    let slots = 0;
    for (let i = from; i < segments.length; i++) slots += segments[i].cap;
    return slots;
  }

  /** Bytes of the typed arrays, for memory figures. */
  byteSize(): number {
    let bytes = 0;
    for (const segment of this.directory.segments) bytes += segment.byteSize();
    return bytes;
  }

  /**
   * Adds the current key, lapsing after tick `deadline` when sessions expire;
   * false when it is present already. Looks it up again first if the table
   * changed since {@link find}. A full segment first drops its entries lapsed
   * at tick `now`, telling the {@link LapsedHandler}.
   */
  insert(now = 0, deadline = 0): boolean {
    if (this.present()) return false;
    if (this.slot < 0) {
      this.entries++;
      this.zeroPresent = true;
      this.zeroDeadline = deadline;
      return true;
    }
    let segment = this.segment;
    while (segment.size >= segment.growAt) {
      this.makeRoom(segment, now);
      if (this.probe()) return false;
      segment = this.segment;
    }
    this.entries++;
    segment.add(this.slot, now, deadline);
    return true;
  }

  /** Removes the current key; false when it is absent. Looks it up again first if the table changed since {@link find}. */
  remove(): boolean {
    if (!this.present()) return false;
    this.entries--;
    if (this.slot < 0) {
      this.zeroPresent = false;
      return true;
    }
    const segment = this.segment;
    segment.removeAt(this.slot);
    this.changes++;
    if (segment.size < segment.shrinkBelow) segment.rebuild(capacityFor(segment.size));
    return true;
  }

  /** Whether the entry {@link find} found has lapsed at tick `now`. Only when sessions expire. */
  isLapsed(now: number): boolean {
    if (this.slot < 0) return now > this.zeroDeadline;
    const segment = this.segment;
    return segment.relativeNow(now) > segment.deadlines![this.slot];
  }

  /** The deadline (an absolute tick) of the entry {@link find} found. Only when sessions expire. */
  deadlineOf(now: number): number {
    if (this.slot < 0) return this.zeroDeadline;
    const segment = this.segment;
    segment.relativeNow(now);
    return segment.deadlines![this.slot] + segment.base;
  }

  /** Pushes the found entry's deadline to `deadline` when it is below `keep`: writes at most once per touch slack. Only when sessions expire. */
  touch(now: number, keep: number, deadline: number): void {
    if (this.slot < 0) {
      if (this.zeroDeadline < keep) this.zeroDeadline = deadline;
      return;
    }
    const segment = this.segment;
    segment.relativeNow(now);
    const deadlines = segment.deadlines!;
    if (deadlines[this.slot] + segment.base < keep) deadlines[this.slot] = deadline - segment.base;
  }

  /**
   * Removes the entries of segment `index` lapsed at tick `now`, telling the
   * {@link LapsedHandler} of each; returns the slots it scanned (0 when the
   * segment's earliest deadline shows nothing can have lapsed). With
   * `mayShrink`, a segment left below its load is rebuilt smaller. Only when
   * sessions expire.
   */
  sweepSegment(index: number, now: number, mayShrink: boolean): number {
    return this.sweep(this.directory.segments[index], now, mayShrink);
  }

  /** Removes the all-zero key if it has lapsed at tick `now`, telling the {@link LapsedHandler}. Only when sessions expire. */
  sweepZero(now: number): void {
    if (this.zeroPresent && now > this.zeroDeadline) {
      this.onLapsed(0n, this.width === 2 ? undefined : 0n);
      this.zeroPresent = false;
      this.entries--;
    }
  }

  private sweep(segment: Segment, now: number, mayShrink: boolean): number {
    if (!segment.mayHaveLapsed(now)) return 0;
    const scanned = segment.cap;
    const lapsed = segment.removeLapsed(now, mayShrink, this.onLapsed);
    if (lapsed > 0) {
      this.entries -= lapsed;
      this.changes++;
    }
    return scanned;
  }

  /** Makes room for one more entry in a full segment: drops lapsed entries, else grows or splits it. */
  private makeRoom(segment: Segment, now: number): void {
    this.changes++;
    if (this.expiring) {
      this.sweep(segment, now, false);
      if (segment.size < segment.growAt) return;
    }
    this.directory.grow(segment);
  }
}
