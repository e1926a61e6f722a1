import fc from 'fast-check';
import { resolveLifetime } from '../../../src/core/session-lifetime';
import { REPLICA_LAPSED, REPLICA_LIVE, REPLICA_TOUCH_DUE, REPLICA_UNKNOWN, RedisReplica } from '../../../src/storages/redis/redis-replica';

const member = (id: bigint, authKeyId?: bigint) => (authKeyId === undefined ? `${id}` : `${authKeyId}:${id}`);

describe('RedisReplica', () => {
  it('converges to the final set whatever a seed scan saw, as long as every entry after the position is applied', () => {
    // A model of a seed: Redis's set changes by entries while the scan runs; the scan returns each
    // member present for the whole scan, and maybe one present for part of it (here: whatever it saw at a random moment).
    const step = fc.record({ id: fc.integer({ min: -20, max: 20 }), scoped: fc.boolean(), create: fc.boolean() });
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: -20, max: 20 })), fc.array(step, { maxLength: 40 }), fc.array(fc.nat(), { maxLength: 45 }), (initial, steps, scanMoments) => {
        const replica = new RedisReplica(resolveLifetime({}, 'test'));
        const redis = new Set(initial.map((id) => member(BigInt(id))));
        const history = [new Set(redis)];
        for (const s of steps) {
          const m = member(BigInt(s.id), s.scoped ? 5n : undefined);
          if (s.create) redis.add(m);
          else redis.delete(m);
          history.push(new Set(redis));
        }
        const generation = replica.beginSeed();
        // Interleave: entries applied in order; scan batches report members as they were at some moment.
        let applied = 0;
        const all = [...new Set(history.flatMap((set) => [...set]))];
        const scanned = all.filter((m) => {
          const moment = scanMoments.length === 0 ? 0 : scanMoments[all.indexOf(m) % scanMoments.length]! % history.length;
          const presentThroughout = history.every((set) => set.has(m));
          return presentThroughout || history[moment]!.has(m);
        });
        for (const [i, m] of scanned.entries()) {
          // Some entries before each batch.
          while (applied < steps.length && applied <= i) {
            const s = steps[applied++]!;
            const id = BigInt(s.id);
            const authKeyId = s.scoped ? 5n : undefined;
            if (s.create) replica.add(member(id, authKeyId), id, authKeyId, undefined);
            else replica.remove(member(id, authKeyId), id, authKeyId);
          }
          replica.seedBatch(generation, [{ value: m, score: 0 }]);
        }
        for (; applied < steps.length; applied++) {
          const s = steps[applied]!;
          const id = BigInt(s.id);
          const authKeyId = s.scoped ? 5n : undefined;
          if (s.create) replica.add(member(id, authKeyId), id, authKeyId, undefined);
          else replica.remove(member(id, authKeyId), id, authKeyId);
        }
        replica.endSeed(generation);
        expect(replica.live).toBe(true);
        for (let id = -20; id <= 20; id++) {
          for (const authKeyId of [undefined, 5n]) {
            const held = replica.lookup(BigInt(id), authKeyId) === REPLICA_LIVE;
            expect([member(BigInt(id), authKeyId), held]).toEqual([member(BigInt(id), authKeyId), redis.has(member(BigInt(id), authKeyId))]);
          }
        }
        expect(replica.size).toBe(redis.size);
      }),
    );
  });

  it('is not live until its seed ends, and a newer seed makes an older one\'s batches count for nothing', () => {
    const replica = new RedisReplica(resolveLifetime({}, 'test'));
    expect(replica.live).toBe(false);
    const first = replica.beginSeed();
    const second = replica.beginSeed();
    replica.seedBatch(first, [{ value: '1', score: 0 }]);
    replica.endSeed(first);
    expect(replica.live).toBe(false);
    replica.seedBatch(second, [{ value: '2', score: 0 }, { value: 'not a member', score: 0 }, { value: '9223372036854775808', score: 0 }]);
    replica.endSeed(second);
    expect(replica.live).toBe(true);
    expect(replica.lookup(1n, undefined)).toBe(REPLICA_UNKNOWN);
    expect(replica.lookup(2n, undefined)).toBe(REPLICA_LIVE);
    expect(replica.size).toBe(1);
  });

  it('keeps deadlines as a lower bound: live strictly before it, due for a touch within idleTimeout of it, lapsed from it on', () => {
    let now = 1_000_000;
    const replica = new RedisReplica(resolveLifetime({ idleTimeout: 8000, clock: () => now }, 'test'));
    replica.endSeed(replica.beginSeed());
    replica.add('1', 1n, undefined, now + 9000);
    expect(replica.lookup(1n, undefined)).toBe(REPLICA_LIVE);
    now += 1001;
    expect(replica.lookup(1n, undefined)).toBe(REPLICA_TOUCH_DUE);
    now += 7998;
    expect(replica.lookup(1n, undefined)).toBe(REPLICA_TOUCH_DUE);
    now += 1;
    expect(replica.lookup(1n, undefined)).toBe(REPLICA_LAPSED);
    replica.confirm(1n, undefined, now + 9000);
    expect(replica.lookup(1n, undefined)).toBe(REPLICA_LIVE);
    // A confirmation never lowers a deadline; a "gone" one drops the session.
    replica.confirm(1n, undefined, now + 10);
    expect(replica.lookup(1n, undefined)).toBe(REPLICA_LIVE);
    replica.confirm(1n, undefined, undefined);
    expect(replica.lookup(1n, undefined)).toBe(REPLICA_UNKNOWN);
    // An entry without a deadline: the first lookup asks Redis.
    replica.add('2', 2n, undefined, undefined);
    expect(replica.lookup(2n, undefined)).toBe(REPLICA_LAPSED);
  });
});
