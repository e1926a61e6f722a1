/**
 * A baseline, not a storage: the least a typed-array hash set of 64-bit ids can
 * be. Open addressing, linear probing, at most 3/4 full, keys in a
 * BigInt64Array compared as two 32-bit halves (no bigint is made to compare),
 * one byte per slot marking it used. No scopes, no deletion, no checks.
 */

const MAX_LOAD = 0.75;
const scratch64 = new BigInt64Array(1);
const scratch32 = new Int32Array(scratch64.buffer);

export class BareTable {
  private keys: BigInt64Array;
  private halves: Int32Array;
  private used: Uint8Array;
  private mask: number;
  private limit: number;
  size = 0;

  constructor(capacity = 1024) {
    let slots = 8;
    while (slots * MAX_LOAD < capacity) slots *= 2;
    this.keys = new BigInt64Array(slots);
    this.halves = new Int32Array(this.keys.buffer);
    this.used = new Uint8Array(slots);
    this.mask = slots - 1;
    this.limit = Math.floor(slots * MAX_LOAD);
  }

  has(id: bigint): boolean {
    scratch64[0] = id;
    const lo = scratch32[0];
    const hi = scratch32[1];
    const { halves, used, mask } = this;
    for (let slot = hash(lo, hi) & mask; used[slot] !== 0; slot = (slot + 1) & mask) {
      if (halves[2 * slot] === lo && halves[2 * slot + 1] === hi) return true;
    }
    return false;
  }

  /** Adds the id; false when it was there already. */
  add(id: bigint): boolean {
    scratch64[0] = id;
    const lo = scratch32[0];
    const hi = scratch32[1];
    const { halves, used, mask } = this;
    let slot = hash(lo, hi) & mask;
    for (; used[slot] !== 0; slot = (slot + 1) & mask) {
      if (halves[2 * slot] === lo && halves[2 * slot + 1] === hi) return false;
    }
    used[slot] = 1;
    halves[2 * slot] = lo;
    halves[2 * slot + 1] = hi;
    if (++this.size > this.limit) this.grow();
    return true;
  }

  /** Bytes the table holds. */
  get bytes(): number {
    return this.keys.byteLength + this.used.byteLength;
  }

  private grow(): void {
    const { halves: oldHalves, used: oldUsed } = this;
    const slots = oldUsed.length * 2;
    this.keys = new BigInt64Array(slots);
    this.halves = new Int32Array(this.keys.buffer);
    this.used = new Uint8Array(slots);
    this.mask = slots - 1;
    this.limit = Math.floor(slots * MAX_LOAD);
    const { halves, used, mask } = this;
    for (let old = 0; old < oldUsed.length; old++) {
      if (oldUsed[old] === 0) continue;
      const lo = oldHalves[2 * old];
      const hi = oldHalves[2 * old + 1];
      let slot = hash(lo, hi) & mask;
      while (used[slot] !== 0) slot = (slot + 1) & mask;
      used[slot] = 1;
      halves[2 * slot] = lo;
      halves[2 * slot + 1] = hi;
    }
  }
}

/** Mixes both halves (murmur3's finaliser), so that ids differing only in their high bits spread too. */
function hash(lo: number, hi: number): number {
  let h = lo ^ Math.imul(hi, 0x85ebca6b);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}
