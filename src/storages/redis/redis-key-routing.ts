import { checkPrefix, keysTagged, type RedisSessionKeys } from './redis-keys.js';

/**
 * Which key group a session belongs to, and where each group's keys live.
 *
 * Routing: the ids as four 32-bit words (session id low, high, auth key id
 * low, high, two's complement; an unscoped session's auth key words are 0),
 * folded by FNV-1a's step per word (h = (h ^ word) * 16777619 mod 2^32 from
 * 2166136261), finished by MurmurHash3's fmix32, modulo `shards`. It depends
 * on nothing but the ids and `shards`, so every instance, of every version,
 * puts one session in the same group; it reads the ids' bits without building
 * a string, so a lookup pays a few multiplications for it.
 *
 * Placement: a Cluster puts a key in slot CRC16(hash tag) mod 16384, and a
 * master owns a contiguous range of slots. Tags chosen at random would leave
 * some masters with more groups than others (with 12 groups over 3 masters,
 * one master holds 6 or more about one time in five). So group i's tag is
 * the first `<prefix>:g<i>:<k>` (k = 0, 1, ...) whose slot falls in the i-th
 * of `shards` equal slot ranges: the groups sit evenly over the slot space,
 * and any even split of the slots over masters shares them evenly.
 */

/** Redis Cluster's hash slots. */
export const CLUSTER_SLOTS = 16384;

/** The most key groups a storage may have: each has its own reader connection per instance. */
export const MAX_SHARDS = 1024;

const ids = new BigInt64Array(2);
const words = new Int32Array(ids.buffer);

/** The key group of a session (see the top of this file). */
export function groupIndex(sessionId: bigint, authKeyId: bigint | undefined, shards: number): number {
  ids[0] = sessionId;
  ids[1] = authKeyId ?? 0n;
  // Little-endian words on every platform Node runs on; the bits, not the byte order, define the hash.
  const low = LITTLE_ENDIAN ? 0 : 1;
  let hash = 0x811c9dc5;
  hash = Math.imul(hash ^ words[low]!, 0x01000193);
  hash = Math.imul(hash ^ words[1 - low]!, 0x01000193);
  hash = Math.imul(hash ^ words[2 + low]!, 0x01000193);
  hash = Math.imul(hash ^ words[3 - low]!, 0x01000193);
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return (hash >>> 0) % shards;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The hash tag of group `index` of `shards` for `prefix` (see the top of this file). */
export function groupTag(prefix: string, index: number, shards: number): string {
  const from = Math.floor((index * CLUSTER_SLOTS) / shards);
  const to = Math.floor(((index + 1) * CLUSTER_SLOTS) / shards);
  // The CRC of the common start once; each try then adds a few ASCII characters.
  const start = crc16(0, Buffer.from(`${prefix}:g${index}:`, 'utf8'));
  // Each try lands in the range with probability about 1/shards; the bound is never reached in practice.
  for (let k = 0; k < 1000 * CLUSTER_SLOTS; k++) {
    const slot = crc16Ascii(start, String(k)) % CLUSTER_SLOTS;
    if (slot >= from && slot < to) return `${prefix}:g${index}:${k}`;
  }
  throw new Error(`No hash tag found for key group ${index} of ${shards} under ${prefix}`);
}

/** The Cluster slot of a key (or of a hash tag's contents): CRC16-XMODEM mod 16384, as Redis computes it. */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  return crc16(0, Buffer.from(key, 'utf8')) % CLUSTER_SLOTS;
}

function crc16(crc: number, bytes: Uint8Array): number {
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ byte) & 0xff]!;
  return crc;
}

function crc16Ascii(crc: number, text: string): number {
  for (let i = 0; i < text.length; i++) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ text.charCodeAt(i)) & 0xff]!;
  return crc;
}

const CRC16_TABLE = (() => {
  const table = new Array<number>(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

/** Every key group's keys: with one group, the prefix's own tag; with more, `{prefix:g<i>:<k>}` (see the top of this file). */
export function groupKeys(prefix: string, shards: number): RedisSessionKeys[] {
  checkPrefix(prefix);
  if (shards === 1) return [keysTagged(prefix)];
  return Array.from({ length: shards }, (_, index) => keysTagged(groupTag(prefix, index, shards)));
}
