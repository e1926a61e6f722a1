import { CLUSTER_SLOTS, groupIndex, groupTag, keySlot } from '../../../src/storages/redis/redis-key-routing';
import { groupKeys } from '../../../src/storages/redis/redis-key-routing';

describe('key groups: routing and placement', () => {
  it('computes Cluster slots as Redis does (values from CLUSTER KEYSLOT)', () => {
    const slots: Record<string, number> = {
      foo: 12182, bar: 5061, '{user1000}.following': 3443, 'mtproto-sessions': 5466, 'a{b}c': 3300, '{}x': 10595, 'héllo': 11061, 'mtproto-sessions:g0:0': 8586,
    };
    for (const [key, slot] of Object.entries(slots)) expect([key, keySlot(key)]).toEqual([key, slot]);
  });

  it('routes a session by a fixed hash of its ids, the same in every version', () => {
    // Pinned (also computed independently from the definition at the top of redis-key-routing):
    // changing these moves sessions between groups, which the layout record would not notice.
    const INT64_MAX = 2n ** 63n - 1n;
    const INT64_MIN = -(2n ** 63n);
    const cases: [bigint, bigint | undefined][] = [[-1n, undefined], [0n, undefined], [INT64_MAX, undefined], [1n, 7n], [INT64_MIN, INT64_MIN]];
    expect(cases.map(([sessionId, authKeyId]) => groupIndex(sessionId, authKeyId, 12))).toEqual([6, 3, 2, 1, 3]);
    expect(groupIndex(5n, undefined, 1)).toBe(0);
    // An unscoped session routes as auth key 0 would.
    expect(groupIndex(123n, undefined, 16)).toBe(groupIndex(123n, 0n, 16));
  });

  it('spreads sessions about evenly over the groups', () => {
    const counts = new Array<number>(12).fill(0);
    for (let i = 0; i < 120_000; i++) counts[groupIndex(BigInt.asIntN(64, BigInt(i + 1) * 0x9e3779b97f4a7c15n), i % 2 === 0 ? undefined : BigInt(i), 12)]!++;
    for (const count of counts) expect(Math.abs(count - 10_000)).toBeLessThan(500);
  });

  it('puts group i in the i-th of shards equal slot ranges, with pinned key names', () => {
    for (const shards of [2, 3, 12, 16, 100]) {
      for (let index = 0; index < shards; index++) {
        const slot = keySlot(groupTag('p', index, shards));
        expect(slot).toBeGreaterThanOrEqual(Math.floor((index * CLUSTER_SLOTS) / shards));
        expect(slot).toBeLessThan(Math.floor(((index + 1) * CLUSTER_SLOTS) / shards));
      }
    }
    const groups = groupKeys('mtproto-sessions', 12);
    expect(groups.map((keys) => keys.sessions.slice(0, keys.sessions.indexOf('}') + 1))).toEqual([
      '{mtproto-sessions:g0:2}', '{mtproto-sessions:g1:1}', '{mtproto-sessions:g2:0}', '{mtproto-sessions:g3:53}',
      '{mtproto-sessions:g4:12}', '{mtproto-sessions:g5:5}', '{mtproto-sessions:g6:3}', '{mtproto-sessions:g7:21}',
      '{mtproto-sessions:g8:51}', '{mtproto-sessions:g9:13}', '{mtproto-sessions:g10:22}', '{mtproto-sessions:g11:10}',
    ]);
    expect(groups[0]).toEqual({
      sessions: '{mtproto-sessions:g0:2}:sessions', events: '{mtproto-sessions:g0:2}:events',
      sequence: '{mtproto-sessions:g0:2}:sequence', quota: '{mtproto-sessions:g0:2}:quota', grants: '{mtproto-sessions:g0:2}:grants',
      origins: '{mtproto-sessions:g0:2}:origins', epoch: '{mtproto-sessions:g0:2}:epoch',
    });
    // One group keeps the layout of every earlier version.
    expect(groupKeys('mtproto-sessions', 1)[0]!.sessions).toBe('{mtproto-sessions}:sessions');
  });

  it('finds the tags of the largest allowed shards quickly', () => {
    const started = performance.now();
    groupKeys('mtproto-sessions', 1024);
    expect(performance.now() - started).toBeLessThan(2000);
  });
});
