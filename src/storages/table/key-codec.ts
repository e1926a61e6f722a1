/**
 * How the table turns ids into keys and keys into slots.
 *
 * A key is 2 (session id) or 4 (auth key id, session id) 32-bit words, each id
 * as its low then its high half (little-endian, two's complement). The all-zero
 * key marks an empty slot.
 *
 * Hashing: each word passes a two-round multiply-xorshift mixer keyed by a
 * per-table random seed, so ids chosen by clients cannot be crafted to collide.
 * The mixed words give two hashes: the directory hash (their xor) picks the
 * segment, the position hash (their sum) the slot within it.
 */

const INV_2_32 = 2 ** -32;
// Bound once: a global lookup per call is slow where the global object is special (a vm context, as in jest).
const imul = Math.imul;

/** Two rounds of multiply-xorshift (the lowbias32 constants), keyed by `seed`: a bijection of 32-bit words. */
export function mix(word: number, seed: number): number {
  let x = imul(word ^ seed, 0x7feb352d);
  x ^= x >>> 15;
  x = imul(x, 0x846ca68b);
  return x ^ (x >>> 16);
}

/** The slot that a position hash lands on in `cap` slots (multiply-shift range reduction: no power-of-two capacity needed). */
export function homeOf(positionHash: number, cap: number): number {
  return ((positionHash >>> 0) * cap * INV_2_32) | 0;
}

/** Whether the key at word `k` of `keys` is the all-zero one, that is, an empty slot. */
export function isEmpty(keys: Int32Array, k: number, width: number): boolean {
  return width === 2 ? (keys[k] | keys[k + 1]) === 0 : (keys[k] | keys[k + 1] | keys[k + 2] | keys[k + 3]) === 0;
}

/**
 * The keys of one table: the current key's words, the ids of a stored key, and
 * the seeded hashes of both. One per table, shared by its segments.
 *
 * The hashes are (a ^ b, a + b) of a = mix(w0, s0) (+ mix(w2, s2)) and
 * b = mix(w1, s1) (+ mix(w3, s3)): {@link hashAt} here, and written out again in
 * `TableCursor`'s probe, the hot path, which must stay shallow enough to inline.
 */
export class KeyCodec {
  /** The current key's words: for width 4, the auth key id's two halves, then the session id's. */
  w0 = 0;
  w1 = 0;
  w2 = 0;
  w3 = 0;
  /** The directory hash of the last key hashed. */
  directoryHash = 0;
  // Views of one 16-byte buffer: ids go in as bigints and come out as 32-bit halves (little-endian), without allocating.
  private readonly idWords = new BigInt64Array(2);
  private readonly halves = new Int32Array(this.idWords.buffer);
  /** The seeds, one per key word. */
  readonly s0: number;
  readonly s1: number;
  readonly s2: number;
  readonly s3: number;

  constructor(
    readonly width: 2 | 4,
    seeds: Int32Array,
  ) {
    this.s0 = seeds[0];
    this.s1 = seeds[1];
    this.s2 = seeds[2];
    this.s3 = seeds[3];
  }

  /** Makes (`authKeyId`, `sessionId`) the current key; `authKeyId` only for width 4. Ids are signed 64-bit, checked by the caller. */
  load(sessionId: bigint, authKeyId: bigint | undefined): void {
    const halves = this.halves;
    this.idWords[0] = sessionId;
    if (this.width === 2) {
      this.w0 = halves[0];
      this.w1 = halves[1];
      return;
    }
    this.idWords[1] = authKeyId!;
    this.w0 = halves[2];
    this.w1 = halves[3];
    this.w2 = halves[0];
    this.w3 = halves[1];
  }

  /** The position hash of the key at word `k` of `keys`; its directory hash is left in {@link directoryHash}. */
  hashAt(keys: Int32Array, k: number): number {
    return this.width === 2 ? this.hash2(keys[k], keys[k + 1]) : this.hash4(keys[k], keys[k + 1], keys[k + 2], keys[k + 3]);
  }

  /** Writes the current key at word `k` of `keys`. */
  storeAt(keys: Int32Array, k: number): void {
    keys[k] = this.w0;
    keys[k + 1] = this.w1;
    if (this.width === 4) {
      keys[k + 2] = this.w2;
      keys[k + 3] = this.w3;
    }
  }

  /** The session id of the key at word `k` of `keys`. */
  sessionIdAt(keys: Int32Array, k: number): bigint {
    const halves = this.halves;
    const at = this.width === 2 ? k : k + 2;
    halves[0] = keys[at];
    halves[1] = keys[at + 1];
    return this.idWords[0];
  }

  /** The auth key id of the key at word `k` of `keys`; undefined for width 2. */
  authKeyIdAt(keys: Int32Array, k: number): bigint | undefined {
    if (this.width === 2) return undefined;
    const halves = this.halves;
    halves[2] = keys[k];
    halves[3] = keys[k + 1];
    return this.idWords[1];
  }

  private hash2(w0: number, w1: number): number {
    const a = mix(w0, this.s0);
    const b = mix(w1, this.s1);
    this.directoryHash = a ^ b;
    return a + b;
  }

  private hash4(w0: number, w1: number, w2: number, w3: number): number {
    const a = (mix(w0, this.s0) + mix(w2, this.s2)) | 0;
    const b = (mix(w1, this.s1) + mix(w3, this.s3)) | 0;
    this.directoryHash = a ^ b;
    return a + b;
  }
}
