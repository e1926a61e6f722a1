/**
 * Deterministic random session ids. MTProto session ids are random over all 64
 * bits, so the bench uses random ids too; a seeded generator makes runs
 * repeatable and lets a fill of 10^8 ids go without holding them all.
 */

const scratch64 = new BigInt64Array(1);
const scratch32 = new Int32Array(scratch64.buffer);

/** xorshift128 (Marsaglia) over 32-bit words: fast, and good enough to spread ids over a hash table. */
export class IdStream {
  private x: number;
  private y = 362436069;
  private z = 521288629;
  private w = 88675123;

  constructor(seed: number) {
    this.x = seed | 0 || 123456789;
    for (let i = 0; i < 16; i++) this.word();
  }

  /** A random 32-bit integer. */
  word(): number {
    const t = this.x ^ (this.x << 11);
    this.x = this.y;
    this.y = this.z;
    this.z = this.w;
    this.w = this.w ^ (this.w >>> 19) ^ (t ^ (t >>> 8));
    return this.w;
  }

  /** A random integer in [0, bound), bound < 2^32. */
  below(bound: number): number {
    return Math.floor(((this.word() >>> 0) / 2 ** 32) * bound);
  }

  /** A random signed 64-bit id (a fresh bigint, as `toSessionId` gives one per message). */
  next(): bigint {
    scratch32[0] = this.word();
    scratch32[1] = this.word();
    return scratch64[0];
  }
}

/**
 * `count` ids to look up: even positions hold ids drawn from `live` (present),
 * odd ones fresh random ids (absent, but for a 2^-64-ish chance). Kept in a
 * BigInt64Array, so that reading one gives a fresh bigint, as a message does.
 */
export function lookupIds(live: BigInt64Array, liveCount: number, count: number, seed: number): BigInt64Array {
  const random = new IdStream(seed);
  const ids = new BigInt64Array(count);
  for (let i = 0; i < count; i++) ids[i] = i % 2 === 0 ? live[random.below(liveCount)] : random.next();
  return ids;
}
