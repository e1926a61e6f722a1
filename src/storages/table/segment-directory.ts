import { isEmpty, type KeyCodec } from './key-codec.js';
import { capacityFor, MIN_SLOTS, Segment } from './table-segment.js';

/** The deepest the directory goes (2^20 segments); beyond it segments grow instead (never with random ids). */
const MAX_DEPTH = 20;

/**
 * Which segment holds a key, and how the segments grow: extendible hashing.
 * The low bits of a key's directory hash pick its segment. A full segment is
 * rebuilt alone, about 1.125x larger, or, once at `maxSlots`, split in two by
 * the next directory bit (doubling the directory when the segment was as deep
 * as it), each half sized to its entries. So growth never rehashes the whole
 * table, and the longest pause is one rebuild of at most `maxSlots` slots.
 */
export class SegmentDirectory {
  /** Every segment once, in creation order; a split adds the new one at the end. */
  readonly segments: Segment[];
  /** 2^depth entries: the segment of each directory hash suffix (a segment of local depth d appears 2^(depth - d) times). */
  private directory: Segment[];
  private mask = 0;
  private depth = 0;

  constructor(
    private readonly codec: KeyCodec,
    expiring: boolean,
    base: number,
    /** Segments at this size split instead of growing. */
    private readonly maxSlots: number,
  ) {
    const first = new Segment(codec, MIN_SLOTS, 0, expiring, base);
    this.segments = [first];
    this.directory = [first];
  }

  /** The segment of a directory hash. */
  segmentFor(directoryHash: number): Segment {
    return this.directory[directoryHash & this.mask];
  }

  /** Makes room for one more entry in a full segment: rebuilds it larger, or splits it. */
  grow(segment: Segment): void {
    const wanted = capacityFor(segment.size + 1);
    if (wanted <= this.maxSlots || segment.depth >= MAX_DEPTH) segment.rebuild(wanted);
    else this.split(segment);
  }

  /** Splits a segment in two by the next directory bit (doubling the directory if needed), each half sized to its entries. */
  private split(segment: Segment): void {
    const codec = this.codec;
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
    const width = codec.width;
    let ones = 0;
    let prefix = -1;
    for (let j = 0, k = 0; j < oldCap; j++, k += width) {
      if (isEmpty(keys, k, width)) continue;
      codec.hashAt(keys, k);
      if ((codec.directoryHash & bit) !== 0) ones++;
      if (prefix < 0) prefix = codec.directoryHash & (bit - 1);
    }
    const zeros = segment.size - ones;
    const sibling = new Segment(codec, capacityFor(ones), localDepth + 1, deadlines !== undefined, segment.base);
    sibling.earliest = segment.earliest;
    segment.allocate(capacityFor(zeros));
    segment.depth = localDepth + 1;
    for (let j = 0, k = 0; j < oldCap; j++, k += width) {
      if (isEmpty(keys, k, width)) continue;
      const positionHash = codec.hashAt(keys, k);
      ((codec.directoryHash & bit) !== 0 ? sibling : segment).place(keys, deadlines, j, positionHash);
    }
    const directory = this.directory;
    for (let i = prefix; i < directory.length; i += bit) directory[i] = (i & bit) !== 0 ? sibling : segment;
    this.segments.push(sibling);
  }
}
