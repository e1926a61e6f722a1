/**
 * One segment of {@link SessionTable}: a small linear-probing table of keys
 * (and deadlines when sessions expire), and the loads that decide when it is
 * rebuilt, split or shrunk.
 */
import { EMPTY_SLOT_DEADLINE } from './deadline-ticks.js';

/** A segment is rebuilt or split before an insert would take it past this load. */
export const MAX_LOAD = 0.8;
/** The load a segment has right after it is rebuilt or split: growth steps are ~MAX_LOAD / RESIZED_LOAD = 1.125x. */
export const RESIZED_LOAD = 0.71;
/** A sweep that finds more lapsed entries than this in a segment rebuilds it instead of deleting them one by one. */
export const SHIFT_REMOVALS = 8;
/** A segment is rebuilt smaller when deletions take it below this load. */
export const SHRINK_LOAD = 0.2;
export const MIN_SLOTS = 16;
/** Segments at this size split instead of growing: bounds the longest rebuild. */
export const MAX_SLOTS = 1 << 15;

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

  constructor(
    private readonly width: number,
    cap: number,
    depth: number,
    expiring: boolean,
    base: number,
  ) {
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
}

/** The number of slots that holds `size` entries at {@link RESIZED_LOAD}. */
export function capacityFor(size: number): number {
  return Math.max(MIN_SLOTS, Math.ceil(size / RESIZED_LOAD));
}
