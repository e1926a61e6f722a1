import fc from 'fast-check';
import { isEmpty, KeyCodec } from '../../../src/storages/table/key-codec';
import { INT64_MAX, INT64_MIN } from '../../../src/core/session-id';

const int64 = fc.oneof(fc.constantFrom(0n, -1n, 1n, INT64_MIN, INT64_MAX, 2n ** 32n, -(2n ** 32n)), fc.bigInt({ min: INT64_MIN, max: INT64_MAX }));

describe('KeyCodec', () => {
  it('gives back the ids of a stored key, scoped and unscoped', () => {
    fc.assert(
      fc.property(int64, int64, (sessionId, authKeyId) => {
        const keys = new Int32Array(8);
        const unscoped = new KeyCodec(2, Int32Array.of(1, 2, 3, 4));
        unscoped.load(sessionId, undefined);
        unscoped.storeAt(keys, 2);
        expect([unscoped.sessionIdAt(keys, 2), unscoped.authKeyIdAt(keys, 2)]).toEqual([sessionId, undefined]);
        const scoped = new KeyCodec(4, Int32Array.of(1, 2, 3, 4));
        scoped.load(sessionId, authKeyId);
        scoped.storeAt(keys, 4);
        expect([scoped.sessionIdAt(keys, 4), scoped.authKeyIdAt(keys, 4)]).toEqual([sessionId, authKeyId]);
        // Only the all-zero key reads as an empty slot.
        expect(isEmpty(keys, 2, 2)).toBe(sessionId === 0n);
        expect(isEmpty(keys, 4, 4)).toBe(sessionId === 0n && authKeyId === 0n);
      }),
    );
  });

  it('hashes by its seeds, so two tables place the same key differently', () => {
    const keys = Int32Array.of(0x12345678, -0x789abcd);
    const hashes = [Int32Array.of(1, 2, 3, 4), Int32Array.of(5, 6, 7, 8)].map((seeds) => {
      const codec = new KeyCodec(2, seeds);
      return [codec.hashAt(keys, 0), codec.directoryHash];
    });
    expect(hashes[0]).not.toEqual(hashes[1]);
  });
});
