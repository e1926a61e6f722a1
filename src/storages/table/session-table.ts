/**
 * The open-addressing hash table behind `InMemorySessionStorage`. Internal:
 * not exported from the package root.
 *
 * Layout. A key is 2 (session id) or 4 (auth key id, session id) 32-bit words,
 * stored inline in an `Int32Array`; the all-zero key marks an empty slot, so the
 * one real all-zero key (session id 0, or the pair (0, 0)) lives in a flag of its
 * own. Keys live in segments: small linear-probing tables of at most
 * {@link MAX_SLOTS} slots (a `Uint32Array` of deadlines beside them when
 * sessions expire). An extendible-hashing directory (the low bits of one hash)
 * picks the segment; the position within it comes from the high bits of another.
 *
 * Growth never rehashes the whole table: a segment that passes {@link MAX_LOAD}
 * is rebuilt alone, about 1.125x larger (to {@link RESIZED_LOAD}), or, once at
 * {@link MAX_SLOTS}, split in two by the next directory bit, each half sized to
 * {@link RESIZED_LOAD}. So the load of every segment stays within
 * [RESIZED_LOAD, MAX_LOAD] (0.71..0.8: 10..11.3 bytes per 8-byte key) at any
 * size, and the longest pause is one rebuild of at most 2^15 slots.
 *
 * Deletion shifts the following entries of the cluster back (no tombstones), so
 * lookups cost the same after any number of create/destroy cycles.
 *
 * Hashing: each key word passes a two-round multiply-xorshift mixer keyed by a
 * per-table random seed, so ids chosen by clients cannot be crafted to collide.
 *
 * Deadlines (when sessions expire) are coarse ticks relative to a base of the
 * segment, so they fit 32 bits; a segment whose base falls too far behind the
 * clock is rebased alone ({@link REBASE_ABOVE}).
 */
import { EMPTY_SLOT_DEADLINE, type Ticks } from './deadline-ticks.js';
import { capacityFor, MIN_SLOTS, MAX_SLOTS, Segment, SHIFT_REMOVALS } from './table-segment.js';

/** The deepest the directory goes (2^20 segments); beyond it segments grow instead (never with random ids). */
const MAX_DEPTH = 20;
const INV_2_32 = 2 ** -32;
// Bound once: a global lookup per call is slow where the global object is special (a vm context, as in jest).
const imul = Math.imul;
/** A segment is rebased when the current tick is this far past its base (or before it). */
const REBASE_ABOVE = 2 ** 31;
/** Where a rebase puts the base: this far behind the current tick, leaving room for a clock that steps back. */
const REBASED_TO = 2 ** 30;

/** Called for each entry a sweep finds lapsed, just before it is removed; `authKeyId` is present in a scoped table. */
export type LapsedHandler = (sessionId: bigint, authKeyId: bigint | undefined) => void;

/** Two rounds of multiply-xorshift (the lowbias32 constants), keyed by `seed`: a bijection of 32-bit words. */
function mix(word: number, seed: number): number {
  let x = imul(word ^ seed, 0x7feb352d);
  x ^= x >>> 15;
  x = imul(x, 0x846ca68b);
  return x ^ (x >>> 16);
}

/** The slot that a position hash lands on in `cap` slots (multiply-shift range reduction: no power-of-two capacity needed). */
function homeOf(positionHash: number, cap: number): number {
  return ((positionHash >>> 0) * cap * INV_2_32) | 0;
}

/**
 * A set of sessions, unscoped (width 2: the session id) or scoped (width 4: the
 * auth key id and the session id), with a deadline each when sessions expire.
 *
 * {@link find} looks a session up and keeps it as the current key: the
 * other per-key methods ({@link insert}, {@link remove}, {@link isLapsed},
 * {@link touch}) act on it without a second lookup. {@link insert} and
 * {@link remove} look it up again themselves when the table has changed since
 * (a removal, a sweep, a rebuild), so a caller never re-probes. The table never
 * calls out during a change except to {@link LapsedHandler}, which must not
 * call back into it.
 */
export class SessionTable {
  /** Entries over all segments, the all-zero key included. */
  size = 0;
  /** The all-zero key, which cannot live in a slot (it marks empty ones). */
  zeroPresent = false;
  /** The all-zero key's deadline, an absolute tick. */
  zeroDeadline = 0;
  /** The current key's words: for width 4, the auth key id's two halves, then the session id's. */
  w0 = 0;
  w1 = 0;
  w2 = 0;
  w3 = 0;
  /** Where the current key is, or the empty slot where it would go; -1 for the all-zero key. */
  slot = -1;
  segment: Segment;
  /** Every segment once, in creation order (the directory holds each 2^(depth - local depth) times). */
  readonly segments: Segment[];
  private directory: Segment[];
  private mask = 0;
  private depth = 0;
  /** The directory hash of the last {@link hashAt}. */
  private lastDirectoryHash = 0;
  /** Counts the changes that move entries or empty slots (removals, rebuilds, splits). */
  private changes = 0;
  /** {@link changes} when the current key was last probed: `slot` is stale once they differ. */
  private probedAt = 0;
  // Views of one 16-byte buffer: ids go in as bigints and come out as 32-bit halves (little-endian), without allocating.
  private readonly idWords = new BigInt64Array(2);
  private readonly halves = new Int32Array(this.idWords.buffer);
  private readonly s0: number;
  private readonly s1: number;
  private readonly s2: number;
  private readonly s3: number;

  constructor(
    readonly width: 2 | 4,
    /** Present when sessions expire. */
    private readonly ticks: Ticks | undefined,
    seeds: Int32Array,
    private readonly onLapsed: LapsedHandler,
    /** Segments at this size split instead of growing; smaller only in tests, to split often. */
    private readonly maxSlots = MAX_SLOTS,
  ) {
    this.s0 = seeds[0];
    this.s1 = seeds[1];
    this.s2 = seeds[2];
    this.s3 = seeds[3];
    this.segment = new Segment(width, MIN_SLOTS, 0, ticks !== undefined, ticks === undefined ? 0 : ticks.now - REBASED_TO);
    this.segments = [this.segment];
    this.directory = [this.segment];
  }

  /** Slots allocated over all segments (for memory figures and sweep budgets). */
  slotCount(): number {
    let slots = 0;
    for (const segment of this.segments) slots += segment.cap;
    return slots;
  }

  /**
   * Looks a session up and makes it the current key. `authKeyId` is the scope:
   * required by a scoped table (width 4), absent for an unscoped one. Ids are
   * signed 64-bit, checked by the caller.
   */
  find(sessionId: bigint, authKeyId?: bigint): boolean {
    const halves = this.halves;
    this.idWords[0] = sessionId;
    if (this.width === 2) {
      this.w0 = halves[0];
      this.w1 = halves[1];
    } else {
      this.idWords[1] = authKeyId!;
      this.w0 = halves[2];
      this.w1 = halves[3];
      this.w2 = halves[0];
      this.w3 = halves[1];
    }
    return this.probe();
  }

  /** Looks the current key up, leaving where it is (or would go) in `segment` and `slot`. */
  private probe(): boolean {
    this.probedAt = this.changes;
    const w0 = this.w0;
    const w1 = this.w1;
    if (this.width === 2) {
      if ((w0 | w1) === 0) {
        this.slot = -1;
        return this.zeroPresent;
      }
      const a = mix(w0, this.s0);
      const b = mix(w1, this.s1);
      const segment = this.directory[(a ^ b) & this.mask];
      this.segment = segment;
      const keys = segment.keys;
      const cap = segment.cap;
      let i = homeOf(a + b, cap);
      for (;;) {
        const k = i << 1;
        const x = keys[k];
        const y = keys[k + 1];
        if (x === w0 && y === w1) {
          this.slot = i;
          return true;
        }
        if ((x | y) === 0) {
          this.slot = i;
          return false;
        }
        i = i + 1 === cap ? 0 : i + 1;
      }
    }
    const w2 = this.w2;
    const w3 = this.w3;
    if ((w0 | w1 | w2 | w3) === 0) {
      this.slot = -1;
      return this.zeroPresent;
    }
    const a = (mix(w0, this.s0) + mix(w2, this.s2)) | 0;
    const b = (mix(w1, this.s1) + mix(w3, this.s3)) | 0;
    const segment = this.directory[(a ^ b) & this.mask];
    this.segment = segment;
    const keys = segment.keys;
    const cap = segment.cap;
    let i = homeOf(a + b, cap);
    for (;;) {
      const k = i << 2;
      const x0 = keys[k];
      const x1 = keys[k + 1];
      const x2 = keys[k + 2];
      const x3 = keys[k + 3];
      if (x0 === w0 && x1 === w1 && x2 === w2 && x3 === w3) {
        this.slot = i;
        return true;
      }
      if ((x0 | x1 | x2 | x3) === 0) {
        this.slot = i;
        return false;
      }
      i = i + 1 === cap ? 0 : i + 1;
    }
  }

  /** Whether the entry {@link find} found has passed its deadline. Only when sessions expire. */
  isLapsed(): boolean {
    const ticks = this.ticks!;
    if (this.slot < 0) return ticks.now > this.zeroDeadline;
    const segment = this.segment;
    return this.relativeNow(segment) > segment.deadlines![this.slot];
  }

  /** The deadline (an absolute tick) of the entry {@link find} found. Only when sessions expire. */
  deadlineOf(): number {
    if (this.slot < 0) return this.zeroDeadline;
    const segment = this.segment;
    this.relativeNow(segment);
    return segment.deadlines![this.slot] + segment.base;
  }

  /** Pushes the found entry's deadline to `ticks.deadline` when it is below `ticks.keep`; writes at most once per touch slack. */
  touch(): void {
    const ticks = this.ticks!;
    if (this.slot < 0) {
      if (this.zeroDeadline < ticks.keep) this.zeroDeadline = ticks.deadline;
      return;
    }
    const segment = this.segment;
    this.relativeNow(segment);
    const deadlines = segment.deadlines!;
    if (deadlines[this.slot] + segment.base < ticks.keep) deadlines[this.slot] = ticks.deadline - segment.base;
  }

  /**
   * Adds the current key, with the deadline `ticks.deadline` when sessions
   * expire; false when it is present already. Looks it up again first if the
   * table changed since {@link find}.
   */
  insert(): boolean {
    if (this.probedAt !== this.changes ? this.probe() : this.slot >= 0 && this.occupied()) return false;
    const ticks = this.ticks;
    if (this.slot < 0) {
      if (this.zeroPresent) return false;
      this.size++;
      this.zeroPresent = true;
      if (ticks !== undefined) this.zeroDeadline = ticks.deadline;
      return true;
    }
    let segment = this.segment;
    while (segment.size >= segment.growAt) {
      this.makeRoom(segment);
      if (this.probe()) return false;
      segment = this.segment;
    }
    this.size++;
    const slot = this.slot;
    const keys = segment.keys;
    if (this.width === 2) {
      keys[slot << 1] = this.w0;
      keys[(slot << 1) + 1] = this.w1;
    } else {
      const k = slot << 2;
      keys[k] = this.w0;
      keys[k + 1] = this.w1;
      keys[k + 2] = this.w2;
      keys[k + 3] = this.w3;
    }
    segment.size++;
    if (ticks !== undefined) {
      this.relativeNow(segment);
      const deadline = ticks.deadline - segment.base;
      segment.deadlines![slot] = deadline;
      if (deadline < segment.earliest) segment.earliest = deadline;
    }
    return true;
  }

  /** Removes the current key; false when it is absent. Looks it up again first if the table changed since {@link find}. */
  remove(): boolean {
    if (this.probedAt !== this.changes) {
      if (!this.probe()) return false;
    } else if (this.slot < 0 ? !this.zeroPresent : !this.occupied()) {
      return false;
    }
    this.size--;
    if (this.slot < 0) {
      this.zeroPresent = false;
      return true;
    }
    const segment = this.segment;
    this.removeAt(segment, this.slot);
    if (segment.size < segment.shrinkBelow) this.rebuild(segment, capacityFor(segment.size));
    return true;
  }

  /** Whether `slot` holds an entry (the current key, when the table has not changed since it was probed). */
  private occupied(): boolean {
    return !isEmpty(this.segment.keys, this.slot * this.width, this.width);
  }

  /**
   * Removes the lapsed entries of one segment, calling `onLapsed` for each;
   * returns the slots it scanned (0 when the segment's earliest deadline shows
   * nothing can have lapsed). Only when sessions expire.
   */
  sweepSegment(segment: Segment, mayShrink: boolean): number {
    const now = this.relativeNow(segment);
    if (segment.earliest >= now) return 0;
    const deadlines = segment.deadlines!;
    const keys = segment.keys;
    const width = this.width;
    const scanned = segment.cap;
    let earliest = EMPTY_SLOT_DEADLINE;
    let lapsed = 0;
    for (let i = 0; i < scanned; i++) {
      const deadline = deadlines[i];
      if (deadline >= now) {
        if (deadline < earliest) earliest = deadline;
        continue;
      }
      // Empty slots hold EMPTY_SLOT_DEADLINE, so this is an entry, and it has lapsed.
      lapsed++;
      this.reportLapsed(keys, i * width);
    }
    segment.earliest = earliest;
    if (lapsed === 0) return scanned;
    this.size -= lapsed;
    if (lapsed > SHIFT_REMOVALS) {
      // Many: rebuild without them in one pass, rather than shifting their clusters back once per entry.
      const survivors = segment.size - lapsed;
      this.rebuild(segment, mayShrink && survivors < segment.shrinkBelow ? capacityFor(survivors) : segment.cap, now);
      return scanned;
    }
    for (let i = 0; i < segment.cap; ) {
      // A shift may move a later entry into slot i: look at it again.
      if (deadlines[i] < now) this.removeAt(segment, i);
      else i++;
    }
    if (mayShrink && segment.size < segment.shrinkBelow) this.rebuild(segment, capacityFor(segment.size));
    return scanned;
  }

  /** Removes the all-zero key if it has lapsed, calling `onLapsed`. Only when sessions expire. */
  sweepZero(): void {
    if (this.zeroPresent && this.ticks!.now > this.zeroDeadline) {
      this.onLapsed(0n, this.width === 2 ? undefined : 0n);
      this.zeroPresent = false;
      this.size--;
    }
  }

  /** Calls `onLapsed` with the ids of the key at word `k` of `keys`. */
  private reportLapsed(keys: Int32Array, k: number): void {
    const halves = this.halves;
    if (this.width === 2) {
      halves[0] = keys[k];
      halves[1] = keys[k + 1];
      this.onLapsed(this.idWords[0], undefined);
      return;
    }
    halves[0] = keys[k + 2];
    halves[1] = keys[k + 3];
    halves[2] = keys[k];
    halves[3] = keys[k + 1];
    this.onLapsed(this.idWords[0], this.idWords[1]);
  }

  /** The current tick relative to the segment's base, rebasing the segment first if that is out of range. */
  private relativeNow(segment: Segment): number {
    const now = this.ticks!.now;
    const relative = now - segment.base;
    if (relative >= 0 && relative <= REBASE_ABOVE) return relative;
    this.rebase(segment, now - REBASED_TO);
    return REBASED_TO;
  }

  /** Moves a segment's base, keeping each deadline's tick (an already lapsed one stays lapsed). */
  private rebase(segment: Segment, base: number): void {
    const shift = base - segment.base;
    const deadlines = segment.deadlines!;
    for (let i = 0; i < segment.cap; i++) {
      const deadline = deadlines[i];
      if (deadline !== EMPTY_SLOT_DEADLINE) deadlines[i] = Math.min(EMPTY_SLOT_DEADLINE - 1, Math.max(0, deadline - shift));
    }
    if (segment.earliest !== EMPTY_SLOT_DEADLINE) segment.earliest = Math.min(EMPTY_SLOT_DEADLINE - 1, Math.max(0, segment.earliest - shift));
    segment.base = base;
  }

  /** Makes room for one more entry in a full segment: drops lapsed entries, else grows or splits it. */
  private makeRoom(segment: Segment): void {
    if (this.ticks !== undefined) {
      this.sweepSegment(segment, false);
      if (segment.size < segment.growAt) return;
    }
    const wanted = capacityFor(segment.size + 1);
    if (wanted <= this.maxSlots || segment.depth >= MAX_DEPTH) this.rebuild(segment, wanted);
    else this.split(segment);
  }

  /** Backward-shift deletion: empties slot `at`, moving later entries of its cluster back where they may go. */
  private removeAt(segment: Segment, at: number): void {
    const keys = segment.keys;
    const deadlines = segment.deadlines;
    const cap = segment.cap;
    const width = this.width;
    let hole = at;
    let j = at;
    for (;;) {
      j = j + 1 === cap ? 0 : j + 1;
      const k = j * width;
      if (width === 2 ? (keys[k] | keys[k + 1]) === 0 : (keys[k] | keys[k + 1] | keys[k + 2] | keys[k + 3]) === 0) break;
      const home = homeOf(this.hashAt(keys, k), cap);
      // The entry at j may move to the hole unless its home lies cyclically in (hole, j].
      if (hole <= j ? home <= hole || home > j : home <= hole && home > j) {
        for (let w = 0; w < width; w++) keys[hole * width + w] = keys[k + w];
        if (deadlines !== undefined) deadlines[hole] = deadlines[j];
        hole = j;
      }
    }
    for (let w = 0; w < width; w++) keys[hole * width + w] = 0;
    if (deadlines !== undefined) deadlines[hole] = EMPTY_SLOT_DEADLINE;
    segment.size--;
    this.changes++;
  }

  /** Rebuilds a segment in place with `cap` slots, leaving out entries whose deadline is below `lapsedBelow`. */
  private rebuild(segment: Segment, cap: number, lapsedBelow = 0): void {
    const keys = segment.keys;
    const deadlines = segment.deadlines;
    const oldCap = segment.cap;
    segment.allocate(cap);
    this.changes++;
    const width = this.width;
    for (let j = 0, k = 0; j < oldCap; j++, k += width) {
      if (isEmpty(keys, k, width) || (deadlines !== undefined && deadlines[j] < lapsedBelow)) continue;
      this.place(segment, keys, deadlines, j, this.hashAt(keys, k));
    }
  }

  /** Splits a segment in two by the next directory bit (doubling the directory if needed), each half sized to its entries. */
  private split(segment: Segment): void {
    this.changes++;
    const localDepth = segment.depth;
    if (localDepth === this.depth) {
      this.directory = this.directory.concat(this.directory);
      this.depth++;
      this.mask = this.directory.length - 1;
    }
    const bit = 1 << localDepth;
    const keys = segment.keys;
    const deadlines = segment.deadlines;
    const oldCap = segment.cap;
    const width = this.width;
    let ones = 0;
    let prefix = -1;
    for (let j = 0, k = 0; j < oldCap; j++, k += width) {
      if (isEmpty(keys, k, width)) continue;
      this.hashAt(keys, k);
      if ((this.lastDirectoryHash & bit) !== 0) ones++;
      if (prefix < 0) prefix = this.lastDirectoryHash & (bit - 1);
    }
    const zeros = segment.size - ones;
    const sibling = new Segment(width, capacityFor(ones), localDepth + 1, deadlines !== undefined, segment.base);
    sibling.earliest = segment.earliest;
    segment.allocate(capacityFor(zeros));
    segment.depth = localDepth + 1;
    for (let j = 0, k = 0; j < oldCap; j++, k += width) {
      if (isEmpty(keys, k, width)) continue;
      const positionHash = this.hashAt(keys, k);
      this.place((this.lastDirectoryHash & bit) !== 0 ? sibling : segment, keys, deadlines, j, positionHash);
    }
    const directory = this.directory;
    for (let i = prefix; i < directory.length; i += bit) directory[i] = (i & bit) !== 0 ? sibling : segment;
    this.segments.push(sibling);
  }

  /** Puts entry `j` of the old arrays into its place in `segment`. */
  private place(segment: Segment, keys: Int32Array, deadlines: Uint32Array | undefined, j: number, positionHash: number): void {
    const width = this.width;
    const cap = segment.cap;
    const target = segment.keys;
    let i = homeOf(positionHash, cap);
    while (!isEmpty(target, i * width, width)) i = i + 1 === cap ? 0 : i + 1;
    for (let w = 0; w < width; w++) target[i * width + w] = keys[j * width + w];
    if (deadlines !== undefined) segment.deadlines![i] = deadlines[j];
    segment.size++;
  }

  /** The position hash of the key at word `k` of `keys`; its directory hash is left in `lastDirectoryHash`. */
  private hashAt(keys: Int32Array, k: number): number {
    let a: number;
    let b: number;
    if (this.width === 2) {
      a = mix(keys[k], this.s0);
      b = mix(keys[k + 1], this.s1);
    } else {
      a = (mix(keys[k], this.s0) + mix(keys[k + 2], this.s2)) | 0;
      b = (mix(keys[k + 1], this.s1) + mix(keys[k + 3], this.s3)) | 0;
    }
    this.lastDirectoryHash = a ^ b;
    return a + b;
  }
}

function isEmpty(keys: Int32Array, k: number, width: number): boolean {
  return width === 2 ? (keys[k] | keys[k + 1]) === 0 : (keys[k] | keys[k + 1] | keys[k + 2] | keys[k + 3]) === 0;
}
