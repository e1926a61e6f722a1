/**
 * One segment of the table: a small linear-probing table of keys (and
 * deadlines when sessions expire), the loads that decide when it is rebuilt,
 * split or shrunk, and every operation within it.
 *
 * Deletion shifts the following entries of the cluster back (no tombstones), so
 * lookups cost the same after any number of create/destroy cycles.
 *
 * Deadlines are ticks relative to the segment's own base, so they fit 32 bits;
 * a segment whose base falls too far behind the clock is rebased alone
 * ({@link REBASE_ABOVE}).
 */
import { homeOf, isEmpty, type KeyCodec } from './key-codec.js';

/** A segment is rebuilt or split before an insert would take it past this load. */
export const MAX_LOAD = 0.8;
/** The load a segment has right after it is rebuilt or split: growth steps are ~MAX_LOAD / RESIZED_LOAD = 1.125x. */
export const RESIZED_LOAD = 0.71;
/** A sweep that finds more lapsed entries than this in a segment rebuilds it instead of deleting them one by one. */
const SHIFT_REMOVALS = 8;
/** A segment is rebuilt smaller when deletions take it below this load. */
const SHRINK_LOAD = 0.2;
export const MIN_SLOTS = 16;
/** Segments at this size split instead of growing: bounds the longest rebuild. */
export const MAX_SLOTS = 1 << 15;
/** The deadline of an empty slot: past every tick, so a sweep never takes it for a lapsed entry. */
const EMPTY_SLOT_DEADLINE = 0xffffffff;
/** A segment is rebased when the current tick is this far past its base (or before it). */
const REBASE_ABOVE = 2 ** 31;
/** Where a rebase puts the base: this far behind the current tick, leaving room for a clock that steps back. */
const REBASED_TO = 2 ** 30;

/** The base of a new table's first segment at tick `now`. */
export function baseAt(now: number): number {
  return now - REBASED_TO;
}

/** The number of slots that holds `size` entries at {@link RESIZED_LOAD}. */
export function capacityFor(size: number): number {
  return Math.max(MIN_SLOTS, Math.ceil(size / RESIZED_LOAD));
}

/** One segment: its slots (keys, and deadlines when sessions expire), their loads, and every change within them. */
export class Segment {
  keys: Int32Array;
  /** Relative to `base`; {@link EMPTY_SLOT_DEADLINE} in empty slots. Only when sessions expire. */
  deadlines: Uint32Array | undefined;
  cap = 0;
  size = 0;
  /** The size past which an insert rebuilds or splits. */
  growAt = 0;
  /** Below this size a deletion rebuilds the segment smaller. */
  shrinkBelow = 0;
  /** Directory bits that this segment's keys share (extendible hashing's local depth). */
  depth: number;
  /** The tick that deadline 0 stands for. */
  base: number;
  /** A lower bound of the deadlines in the segment ({@link EMPTY_SLOT_DEADLINE} when known empty): lets sweeps skip it. */
  earliest = EMPTY_SLOT_DEADLINE;
  private readonly width: 2 | 4;

  constructor(
    /** The table's keys, shared by all its segments. */
    private readonly codec: KeyCodec,
    cap: number,
    depth: number,
    expiring: boolean,
    base: number,
  ) {
    this.width = codec.width;
    this.keys = new Int32Array(0);
    this.deadlines = expiring ? new Uint32Array(0) : undefined;
    this.depth = depth;
    this.base = base;
    this.allocate(cap);
  }

  /** Replaces the arrays with empty ones of `cap` slots. */
  allocate(cap: number): void {
    this.keys = new Int32Array(cap * this.width);
    if (this.deadlines !== undefined) this.deadlines = new Uint32Array(cap).fill(EMPTY_SLOT_DEADLINE);
    this.cap = cap;
    this.size = 0;
    this.growAt = Math.floor(cap * MAX_LOAD);
    this.shrinkBelow = cap > MIN_SLOTS ? Math.floor(cap * SHRINK_LOAD) : 0;
  }

  /** Whether `slot` holds an entry. */
  occupied(slot: number): boolean {
    return !isEmpty(this.keys, slot * this.width, this.width);
  }

  /** Puts the codec's current key in the empty `slot`, with the absolute `deadline` when sessions expire. */
  add(slot: number, now: number, deadline: number): void {
    this.codec.storeAt(this.keys, slot * this.width);
    this.size++;
    if (this.deadlines === undefined) return;
    this.relativeNow(now);
    const relative = deadline - this.base;
    this.deadlines[slot] = relative;
    if (relative < this.earliest) this.earliest = relative;
  }

  /** Whether an entry can have lapsed at tick `now`: false when the earliest deadline is still ahead. */
  mayHaveLapsed(now: number): boolean {
    // Rebased first: a rebase moves `earliest`.
    const relative = this.relativeNow(now);
    return this.earliest < relative;
  }

  /**
   * Removes the entries lapsed at tick `now`, calling `onLapsed` with the ids of
   * each before any is removed; returns how many. With `mayShrink`, a segment
   * left below its load is rebuilt smaller.
   */
  removeLapsed(now: number, mayShrink: boolean, onLapsed: (sessionId: bigint, authKeyId: bigint | undefined) => void): number {
    const relative = this.relativeNow(now);
    const deadlines = this.deadlines!;
    const keys = this.keys;
    const codec = this.codec;
    const width = this.width;
    let earliest = EMPTY_SLOT_DEADLINE;
    let lapsed = 0;
    for (let i = 0; i < this.cap; i++) {
      const deadline = deadlines[i];
      if (deadline >= relative) {
        if (deadline < earliest) earliest = deadline;
        continue;
      }
      // Empty slots hold EMPTY_SLOT_DEADLINE, so this is an entry, and it has lapsed.
      lapsed++;
      onLapsed(codec.sessionIdAt(keys, i * width), codec.authKeyIdAt(keys, i * width));
    }
    this.earliest = earliest;
    if (lapsed === 0) return 0;
    if (lapsed > SHIFT_REMOVALS) {
      // Many: rebuild without them in one pass, rather than shifting their clusters back once per entry.
      const survivors = this.size - lapsed;
      this.rebuild(mayShrink && survivors < this.shrinkBelow ? capacityFor(survivors) : this.cap, relative);
      return lapsed;
    }
    for (let i = 0; i < this.cap; ) {
      // A shift may move a later entry into slot i: look at it again.
      if (deadlines[i] < relative) this.removeAt(i);
      else i++;
    }
    if (mayShrink && this.size < this.shrinkBelow) this.rebuild(capacityFor(this.size));
    return lapsed;
  }

  /** Backward-shift deletion: empties slot `at`, moving later entries of its cluster back where they may go. */
  removeAt(at: number): void {
    const keys = this.keys;
    const deadlines = this.deadlines;
    const cap = this.cap;
    const width = this.width;
    let hole = at;
    let j = at;
    for (;;) {
      j = j + 1 === cap ? 0 : j + 1;
      const k = j * width;
      if (isEmpty(keys, k, width)) break;
      const home = homeOf(this.codec.hashAt(keys, k), cap);
      // The entry at j may move to the hole unless its home lies cyclically in (hole, j].
      if (hole <= j ? home <= hole || home > j : home <= hole && home > j) {
        for (let w = 0; w < width; w++) keys[hole * width + w] = keys[k + w];
        if (deadlines !== undefined) deadlines[hole] = deadlines[j];
        hole = j;
      }
    }
    for (let w = 0; w < width; w++) keys[hole * width + w] = 0;
    if (deadlines !== undefined) deadlines[hole] = EMPTY_SLOT_DEADLINE;
    this.size--;
  }

  /** Rebuilds the segment in place with `cap` slots, leaving out entries whose relative deadline is below `lapsedBelow`. */
  rebuild(cap: number, lapsedBelow = 0): void {
    const keys = this.keys;
    const deadlines = this.deadlines;
    const oldCap = this.cap;
    this.allocate(cap);
    const width = this.width;
    for (let j = 0, k = 0; j < oldCap; j++, k += width) {
      if (isEmpty(keys, k, width) || (deadlines !== undefined && deadlines[j] < lapsedBelow)) continue;
      this.place(keys, deadlines, j, this.codec.hashAt(keys, k));
    }
  }

  /** Puts entry `j` of another segment's old arrays (same base) into its place here. */
  place(keys: Int32Array, deadlines: Uint32Array | undefined, j: number, positionHash: number): void {
    const width = this.width;
    const cap = this.cap;
    const target = this.keys;
    let i = homeOf(positionHash, cap);
    while (!isEmpty(target, i * width, width)) i = i + 1 === cap ? 0 : i + 1;
    for (let w = 0; w < width; w++) target[i * width + w] = keys[j * width + w];
    if (deadlines !== undefined) this.deadlines![i] = deadlines[j];
    this.size++;
  }

  /** Bytes of the typed arrays. */
  byteSize(): number {
    return this.keys.byteLength + (this.deadlines?.byteLength ?? 0);
  }

  /** Tick `now` relative to the base, rebasing first if that is out of range: read deadlines after it. */
  relativeNow(now: number): number {
    const relative = now - this.base;
    if (relative >= 0 && relative <= REBASE_ABOVE) return relative;
    this.rebase(now - REBASED_TO);
    return REBASED_TO;
  }

  /** Moves the base, keeping each deadline's tick (an already lapsed one stays lapsed). */
  private rebase(base: number): void {
    const shift = base - this.base;
    const deadlines = this.deadlines!;
    for (let i = 0; i < this.cap; i++) {
      const deadline = deadlines[i];
      if (deadline !== EMPTY_SLOT_DEADLINE) deadlines[i] = Math.min(EMPTY_SLOT_DEADLINE - 1, Math.max(0, deadline - shift));
    }
    if (this.earliest !== EMPTY_SLOT_DEADLINE) this.earliest = Math.min(EMPTY_SLOT_DEADLINE - 1, Math.max(0, this.earliest - shift));
    this.base = base;
  }
}
