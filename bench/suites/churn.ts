/**
 * Churn: millions of create/destroy cycles on a table that keeps holding the
 * same number of live sessions. An open-addressing table that leaves
 * tombstones gets slower at lookups as they pile up; the figure is hasSession/s
 * after the churn against hasSession/s before it.
 */
import { InMemorySessionStorage } from '../../src/index.js';
import type { Suite } from '../harness.js';
import { IdStream, lookupIds } from '../ids.js';
import { expectEqual, sizeText } from '../support.js';

const CHUNKS = 5;

export const churnSuite: Suite = {
  name: 'churn',
  description: 'hasSession on the in-memory storage before and after millions of create/destroy cycles',
  async run(ctx) {
    const n = ctx.pick({ quick: 10_000, default: 1_000_000 });
    const cycles = ctx.pick({ quick: 50_000, default: 5_000_000 });
    const lookups = ctx.pick({ quick: 1 << 12, default: 1 << 20 });
    const expectedHits = lookups / 2;

    ctx.progress(`filling ${sizeText(n)} sessions`);
    const random = new IdStream(11);
    const ring = new BigInt64Array(n);
    for (let i = 0; i < n; i++) ring[i] = random.next();
    const storage = new InMemorySessionStorage();
    const set = new Set<bigint>();
    for (let i = 0; i < n; i++) {
      await storage.createSession(ring[i]);
      set.add(ring[i]);
    }
    // The Set churns through the same ids, on a ring of its own.
    const setRing = ring.slice();

    const lookupRates = async (ids: BigInt64Array): Promise<number[]> => {
      const { storage: rates } = await ctx.rates({
        storage: {
          ops: lookups,
          async run() {
            let hits = 0;
            for (let i = 0; i < lookups; i++) if (await storage.hasSession(ids[i])) hits++;
            expectEqual(hits, expectedHits, 'storage.hasSession hits');
          },
        },
      });
      return rates;
    };

    ctx.progress('lookups before the churn');
    const before = await lookupRates(lookupIds(ring, n, lookups, 12));

    ctx.progress(`${sizeText(cycles)} create/destroy cycles, oldest session first, in ${CHUNKS} timed chunks`);
    const perChunk = Math.floor(cycles / CHUNKS);
    const storageIds = new IdStream(13);
    const setIds = new IdStream(13);
    const storageCycles: number[] = [];
    const setCycles: number[] = [];
    let storageAt = 0;
    let setAt = 0;
    for (let chunk = 0; chunk < CHUNKS; chunk++) {
      let start = process.hrtime.bigint();
      let changed = 0;
      for (let i = 0; i < perChunk; i++) {
        if (await storage.destroySession(ring[storageAt])) changed++;
        const id = storageIds.next();
        if (await storage.createSession(id)) changed++;
        ring[storageAt] = id;
        storageAt = storageAt + 1 === n ? 0 : storageAt + 1;
      }
      storageCycles.push(perChunk / (Number(process.hrtime.bigint() - start) / 1e9));
      expectEqual(changed, 2 * perChunk, 'storage churn transitions');

      start = process.hrtime.bigint();
      changed = 0;
      for (let i = 0; i < perChunk; i++) {
        if (await set.delete(setRing[setAt])) changed++;
        const id = setIds.next();
        const size = set.size;
        if ((await set.add(id)).size !== size) changed++;
        setRing[setAt] = id;
        setAt = setAt + 1 === n ? 0 : setAt + 1;
      }
      setCycles.push(perChunk / (Number(process.hrtime.bigint() - start) / 1e9));
      expectEqual(changed, 2 * perChunk, 'Set churn transitions');
    }
    expectEqual(await storage.count(), n, 'live sessions after the churn');

    ctx.progress('lookups after the churn');
    const after = await lookupRates(lookupIds(ring, n, lookups, 14));

    const params = { sessions: n, cycles: perChunk * CHUNKS, lookupsPerRound: lookups };
    ctx.figure({
      id: 'churn.has-after-vs-before',
      label: `await storage.hasSession(id), ${sizeText(n)} live, after ${sizeText(cycles)} create/destroy cycles, vs before them`,
      unit: 'ops/s',
      better: 'higher',
      value: after,
      baseline: { label: 'the same, before the churn', samples: before },
      target: { ratio: 0.9 },
      note: '≈ 1: no tombstone slowdown',
      params,
    });
    ctx.figure({
      id: 'churn.cycles-vs-set',
      label: `create/destroy cycles on the storage, ${sizeText(n)} live, vs Set`,
      unit: 'cycles/s',
      better: 'higher',
      value: storageCycles,
      baseline: { label: 'await Set.delete + Set.add', samples: setCycles },
      params,
    });
    expectEqual(set.size, n, 'Set size after the churn');
  },
};
