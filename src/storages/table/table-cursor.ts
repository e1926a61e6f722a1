import { homeOf, KeyCodec, mix } from './key-codec.js';
import { SegmentDirectory } from './segment-directory.js';
import type { Segment } from './table-segment.js';

/**
 * Finds a key in the table's segments and remembers where it is (the current
 * key), so that what the caller does next to that key needs no second lookup.
 *
 * `SessionTable` extends it: the lookup runs on every message, and reads its
 * fields off the one object rather than through a second one.
 */
export class TableCursor {
  protected readonly codec: KeyCodec;
  protected readonly directory: SegmentDirectory;
  /** The all-zero key, which cannot live in a slot (it marks empty ones). */
  protected zeroPresent = false;
  /** The segment of the current key. */
  protected segment: Segment;
  /** Where the current key is in {@link segment}, or the empty slot where it would go; -1 for the all-zero key. */
  protected slot = -1;
  /** Counts the changes that move entries or empty slots (removals, sweeps, rebuilds, splits). */
  protected changes = 0;
  /** {@link changes} when the current key was last probed: `slot` is stale once they differ. */
  private probedAt = 0;

  constructor(
    readonly width: 2 | 4,
    seeds: Int32Array,
    expiring: boolean,
    base: number,
    maxSlots: number,
  ) {
    this.codec = new KeyCodec(width, seeds);
    this.directory = new SegmentDirectory(this.codec, expiring, base, maxSlots);
    this.segment = this.directory.segments[0];
  }

  /**
   * Looks a session up and makes it the current key. `authKeyId` is the scope:
   * required by a scoped table (width 4), absent for an unscoped one. Ids are
   * signed 64-bit, checked by the caller.
   */
  find(sessionId: bigint, authKeyId?: bigint): boolean {
    this.codec.load(sessionId, authKeyId);
    return this.probe();
  }

  /** Whether the current key is in the table, looking it up again if the table has changed since {@link find}. */
  protected present(): boolean {
    if (this.probedAt !== this.changes) return this.probe();
    return this.slot < 0 ? this.zeroPresent : this.segment.occupied(this.slot);
  }

  /**
   * Looks the current key up, leaving where it is (or would go) in `segment` and
   * `slot`. The hot path of every lookup, in one function: KeyCodec's hashes and
   * the linear probe written out, so that callers inline {@link find} and make
   * this one call.
   */
  protected probe(): boolean {
    this.probedAt = this.changes;
    const codec = this.codec;
    const w0 = codec.w0;
    const w1 = codec.w1;
    if (this.width === 2) {
      if ((w0 | w1) === 0) return this.foundZero();
      const a = mix(w0, codec.s0);
      const b = mix(w1, codec.s1);
      const segment = this.directory.segmentFor(a ^ b);
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
    const w2 = codec.w2;
    const w3 = codec.w3;
    if ((w0 | w1 | w2 | w3) === 0) return this.foundZero();
    const a = (mix(w0, codec.s0) + mix(w2, codec.s2)) | 0;
    const b = (mix(w1, codec.s1) + mix(w3, codec.s3)) | 0;
    const segment = this.directory.segmentFor(a ^ b);
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

  /** The current key is the all-zero one, kept in a flag. */
  private foundZero(): boolean {
    this.slot = -1;
    return this.zeroPresent;
  }
}
