import fc from 'fast-check';
import { InMemorySessionStorage } from 'nestjs-mtproto-sessions';
import { SessionTable } from '../../../src/storages/table/session-table';
import type { SegmentDirectory } from '../../../src/storages/table/segment-directory';
import { MAX_LOAD, MAX_SLOTS, type Segment } from '../../../src/storages/table/table-segment';
import { INT64_MAX, INT64_MIN } from '../../../src/core/session-id';
import { modelKey } from '../../support/session-test-helpers';

/** The storage's tables, for checks on the layout behind the public API. */
function tablesOf(storage: InMemorySessionStorage): { unscoped: SessionTable; scoped: SessionTable } {
  return storage as unknown as { unscoped: SessionTable; scoped: SessionTable };
}

/** A table's insides, for checks on its layout. */
function insidesOf(table: SessionTable): { directory: SegmentDirectory; segment: Segment; slot: number; zeroPresent: boolean } {
  return table as unknown as { directory: SegmentDirectory; segment: Segment; slot: number; zeroPresent: boolean };
}

function segmentsOf(table: SessionTable): readonly Segment[] {
  return insidesOf(table).directory.segments;
}

/** Occupied slots over every segment: equals the entries when deletion leaves no tombstones. */
function occupiedSlots(table: SessionTable): number {
  let occupied = 0;
  for (const segment of segmentsOf(table)) {
    for (let k = 0; k < segment.keys.length; k += table.width) {
      let any = 0;
      for (let w = 0; w < table.width; w++) any |= segment.keys[k + w];
      if (any !== 0) occupied++;
    }
  }
  return occupied;
}

/** A small deterministic generator of 64-bit ids (xorshift128). */
function idGenerator(seed: number): () => bigint {
  let a = seed | 1;
  let b = 0x9e3779b9;
  let c = 0x85ebca6b;
  let d = seed ^ 0x2545f491;
  const next = (): number => {
    const t = a ^ (a << 11);
    a = b;
    b = c;
    c = d;
    d = d ^ (d >>> 19) ^ t ^ (t >>> 8);
    return d >>> 0;
  };
  // Through a typed array: BigInt arithmetic per id would cost more than the operations under test.
  const words = new Int32Array(2);
  const id = new BigInt64Array(words.buffer);
  return () => {
    words[0] = next();
    words[1] = next();
    return id[0];
  };
}

const EDGES = [0n, -1n, 1n, INT64_MIN, INT64_MAX, INT64_MIN + 1n, INT64_MAX - 1n, 2n ** 32n, -(2n ** 32n), 2n ** 31n, -(2n ** 31n)];

describe('InMemorySessionStorage hash table', () => {
  it('agrees with a Set model over random operations across several segment splits, shrinks and the edge ids', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer(),
        fc.integer({ min: 500, max: 15_000 }),
        fc.constantFrom<(bigint | undefined)[]>([undefined], [undefined, 0n, -1n, INT64_MIN, INT64_MAX, 77n]),
        async (seed, poolSize, authKeys) => {
          const storage = new InMemorySessionStorage();
          const model = new Set<string>();
          const random = idGenerator(seed);
          const pool = [...EDGES, ...Array.from({ length: poolSize }, random)];
          const pick = (n: number) => Number(BigInt.asUintN(32, random()) % BigInt(n));
          // Calling expect() per operation would cost more than the operations: collect disagreements instead.
          const disagreements: string[] = [];
          const op = async (name: number, sessionId: bigint, authKeyId: bigint | undefined) => {
            const key = modelKey(sessionId, authKeyId);
            let expected: boolean;
            let actual: boolean;
            if (name === 0) {
              expected = !model.has(key);
              model.add(key);
              actual = await storage.createSession(sessionId, authKeyId);
            } else if (name === 1) {
              expected = model.delete(key);
              actual = await storage.destroySession(sessionId, authKeyId);
            } else {
              expected = model.has(key);
              actual = await storage.hasSession(sessionId, authKeyId);
            }
            if (actual !== expected && disagreements.length < 5) disagreements.push(`${['create', 'destroy', 'has'][name]} ${key}: ${actual}`);
          };
          // Fill (growth and splits), then mix, then drain most of it (shrinks), checking every result.
          for (const id of pool) await op(0, id, authKeys[pick(authKeys.length)]);
          expect(await storage.count()).toBe(model.size);
          for (let i = 0; i < pool.length; i++) await op(pick(3), pool[pick(pool.length)], authKeys[pick(authKeys.length)]);
          expect(await storage.count()).toBe(model.size);
          for (let i = 0; i < 2 * pool.length; i++) await op(pick(4) === 0 ? 0 : 1, pool[pick(pool.length)], authKeys[pick(authKeys.length)]);
          expect(await storage.count()).toBe(model.size);
          for (const id of pool) for (const authKeyId of authKeys) await op(2, id, authKeyId);
          expect(disagreements).toEqual([]);
          const { unscoped, scoped } = tablesOf(storage);
          expect(occupiedSlots(unscoped) + occupiedSlots(scoped)).toBe(model.size - (insidesOf(unscoped).zeroPresent ? 1 : 0) - (insidesOf(scoped).zeroPresent ? 1 : 0));
        },
      ),
      { numRuns: 4 },
    );
  });

  it('splits into many segments as it grows, keeping every segment within its load bounds', async () => {
    const storage = new InMemorySessionStorage();
    const random = idGenerator(42);
    const ids = Array.from({ length: 100_000 }, random);
    for (const id of ids) await storage.createSession(id);
    const { unscoped } = tablesOf(storage);
    expect(unscoped.segmentCount).toBeGreaterThanOrEqual(4);
    expect(MAX_SLOTS).toBe(1 << 15);
    for (const segment of segmentsOf(unscoped)) {
      expect(segment.cap).toBeLessThanOrEqual(MAX_SLOTS);
      expect(segment.size).toBeLessThanOrEqual(Math.floor(segment.cap * MAX_LOAD));
    }
    // Memory: 8-byte keys at a load of at least ~0.7 overall.
    expect(unscoped.slotCount() * 8).toBeLessThan(ids.length * 12);
    let found = 0;
    for (const id of ids) if (await storage.hasSession(id)) found++;
    expect(found).toBe(ids.length);
  });

  it('keeps the unscoped scope and every auth key apart, at scale and for the sentinel id 0', async () => {
    const storage = new InMemorySessionStorage();
    const random = idGenerator(7);
    const ids = [0n, ...Array.from({ length: 20_000 }, random)];
    const keys = [0n, -1n, INT64_MAX];
    const ownerOf = (id: bigint) => keys[Number(BigInt.asUintN(2, id)) % keys.length];
    for (const id of ids) await storage.createSession(id, ownerOf(id));
    const wrong: string[] = [];
    for (const id of ids) {
      if (await storage.hasSession(id)) wrong.push(`unscoped ${id}`);
      for (const key of keys) if ((await storage.hasSession(id, key)) !== (key === ownerOf(id))) wrong.push(`${key}:${id}`);
    }
    expect(wrong).toEqual([]);
    expect(await storage.createSession(0n)).toBe(true);
    expect(await storage.count()).toBe(ids.length + 1);
    expect(await storage.destroySession(0n, 0n)).toBe(true);
    expect(await storage.hasSession(0n)).toBe(true);
    expect(await storage.hasSession(0n, 0n)).toBe(false);
  });

  it('has no tombstones: after 200k create/destroy cycles count is 0, slots are empty and lookups stay correct', async () => {
    const storage = new InMemorySessionStorage();
    const random = idGenerator(99);
    const resident = Array.from({ length: 5_000 }, random);
    for (const id of resident) await storage.createSession(id);
    let failures = 0;
    for (let i = 0; i < 200_000; i++) {
      const id = random();
      const authKeyId = i % 3 === 0 ? BigInt(i) : undefined;
      if (!(await storage.createSession(id, authKeyId))) failures++;
      if (!(await storage.destroySession(id, authKeyId))) failures++;
    }
    expect(failures).toBe(0);
    expect(await storage.count()).toBe(resident.length);
    for (const id of resident) if (!(await storage.hasSession(id))) failures++;
    for (const id of resident) if (!(await storage.destroySession(id))) failures++;
    expect(failures).toBe(0);
    expect(await storage.count()).toBe(0);
    const { unscoped, scoped } = tablesOf(storage);
    expect(occupiedSlots(unscoped)).toBe(0);
    expect(occupiedSlots(scoped)).toBe(0);
    for (const id of resident.slice(0, 100)) expect(await storage.hasSession(id)).toBe(false);
    // The table shrank back as it emptied.
    expect(unscoped.slotCount()).toBeLessThan(1_000);
  });

  it('hashes with a seed of its own, so two storages place the same ids differently', async () => {
    const a = new InMemorySessionStorage();
    const b = new InMemorySessionStorage();
    const ids = Array.from({ length: 200 }, idGenerator(1));
    for (const id of ids) {
      await a.createSession(id);
      await b.createSession(id);
    }
    const layout = (storage: InMemorySessionStorage) => Array.from(segmentsOf(tablesOf(storage).unscoped)[0].keys).join(',');
    expect(layout(a)).not.toBe(layout(b));
  });
});

/** The ids whose 32-bit halves are a key's words, as the table packs them: width 4 is (auth key id, session id). */
function idsOf(words: readonly number[]): [bigint, bigint | undefined] {
  const long = (low: number, high: number) => BigInt.asIntN(64, (BigInt(high >>> 0) << 32n) | BigInt(low >>> 0));
  return words.length === 2 ? [long(words[0], words[1]), undefined] : [long(words[2], words[3]), long(words[0], words[1])];
}

/** Every entry of a segment is reachable from its home slot without crossing an empty slot, and no slot holds a key twice. */
function checkSegment(table: SessionTable, segment: Segment): string[] {
  const problems: string[] = [];
  let occupied = 0;
  for (let slot = 0; slot < segment.cap; slot++) {
    const k = slot * table.width;
    const words = Array.from(segment.keys.subarray(k, k + table.width));
    if (words.every((word) => word === 0)) continue;
    occupied++;
    const [sessionId, authKeyId] = idsOf(words);
    if (!table.find(sessionId, authKeyId) || insidesOf(table).segment !== segment || insidesOf(table).slot !== slot) problems.push(`slot ${slot} of a segment is not found where it is`);
  }
  if (occupied !== segment.size) problems.push(`segment size ${segment.size} but ${occupied} slots occupied`);
  if (segment.size > Math.max(segment.growAt, 0)) problems.push(`segment over its load: ${segment.size}/${segment.cap}`);
  return problems;
}

describe('SessionTable (small segments, so that it splits often)', () => {
  const word = fc.oneof(fc.constantFrom(0, -1, 1, 0x7fffffff, -0x80000000), fc.integer({ min: -0x80000000, max: 0x7fffffff }));

  it.each([2, 4] as const)('with %i-word keys agrees with a Set model over random operations, the all-zero key included', (width) => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.array(word, { minLength: width, maxLength: width }), { minLength: 1, maxLength: 400, size: 'max', selector: (key) => key.join(',') }),
        fc.array(fc.tuple(fc.constantFrom('insert', 'remove', 'find', 'replace'), fc.nat()), { maxLength: 1500, size: 'max' }),
        fc.integer(),
        (pool, ops, seed) => {
          const keys = [new Array<number>(width).fill(0), ...pool];
          const table = new SessionTable(width, Int32Array.of(seed, ~seed, seed * 3, seed ^ 0x5bd1e995), undefined, () => {}, 64);
          const model = new Set<string>();
          const find = (key: number[]) => table.find(...idsOf(key));
          // Fill first so that the run always grows through several splits, then apply the random operations.
          for (const key of keys) {
            if (!find(key)) {
              table.insert();
              model.add(key.join(','));
            }
          }
          const disagreements: string[] = [];
          for (const [op, index] of ops) {
            const key = keys[index % keys.length];
            const name = key.join(',');
            const found = find(key);
            if (found !== model.has(name)) disagreements.push(`${op} ${name}: found ${found}`);
            if (op === 'insert') {
              // A second insert of the same key, with no find between, reports it present.
              if (table.insert() === found) disagreements.push(`insert ${name}: inserted although found ${found}`);
              if (table.insert()) disagreements.push(`insert ${name}: inserted twice`);
              model.add(name);
            } else if (op === 'remove') {
              if (table.remove() !== found) disagreements.push(`remove ${name}: removed although found ${found}`);
              if (table.remove()) disagreements.push(`remove ${name}: removed twice`);
              model.delete(name);
            } else if (op === 'replace' && found) {
              // A lapsed session created again: removed, then inserted with no find between, though the removal moved entries.
              table.remove();
              if (!table.insert()) disagreements.push(`replace ${name}: not inserted again`);
            }
            if (table.size !== model.size) disagreements.push(`${op} ${name}: size ${table.size}, model ${model.size}`);
          }
          for (const key of keys) if (find(key) !== model.has(key.join(','))) disagreements.push(`final ${key.join(',')}`);
          expect(disagreements.slice(0, 5)).toEqual([]);
          expect(segmentsOf(table).flatMap((segment) => checkSegment(table, segment))).toEqual([]);
          if (keys.length > 200) expect(table.segmentCount).toBeGreaterThan(2);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('splits deep: thousands of keys in 64-slot segments, then all removed again', () => {
    const table = new SessionTable(2, Int32Array.of(1, 2, 3, 4), undefined, () => {}, 64);
    const random = idGenerator(5);
    const keys = Array.from({ length: 5_000 }, () => random());
    for (const key of keys) if (!table.find(key)) table.insert();
    expect(table.segmentCount).toBeGreaterThan(64);
    expect(segmentsOf(table).flatMap((segment) => checkSegment(table, segment))).toEqual([]);
    let missing = 0;
    for (const key of keys) {
      if (table.find(key)) table.remove();
      else missing++;
    }
    expect(missing).toBe(0);
    expect(table.size).toBe(0);
    expect(segmentsOf(table).flatMap((segment) => checkSegment(table, segment))).toEqual([]);
  });
});

/** A pool of distinct keys (words as the table packs them), the all-zero key first. */
function keyPool(width: 2 | 4, words: readonly number[][]): number[][] {
  const seen = new Set<string>();
  const keys = [new Array<number>(width).fill(0)];
  for (const key of words) {
    const name = key.join(',');
    if (!seen.has(name) && key.some((word) => word !== 0)) {
      seen.add(name);
      keys.push(key);
    }
  }
  return keys;
}

describe('SessionTable with deadlines (ticks passed to each call)', () => {
  const word = fc.oneof(fc.constantFrom(0, -1, 1, 0x7fffffff, -0x80000000), fc.integer({ min: -0x80000000, max: 0x7fffffff }));
  const op = fc.tuple(fc.constantFrom('insert', 'insert', 'touch', 'check', 'remove', 'advance', 'advance', 'jump', 'sweep'), fc.nat(), fc.integer({ min: -50, max: 3000 }));

  it.each([2, 4] as const)('with %i-word keys agrees with a model of deadlines: lapse, touch, sweeps, full segments, and clock jumps that rebase them', (width) => {
    fc.assert(
      fc.property(fc.array(fc.array(word, { minLength: width, maxLength: width }), { minLength: 1, maxLength: 300, size: 'max' }), fc.array(op, { maxLength: 1500, size: 'max' }), fc.integer(), (words, ops, seed) => {
        const keys = keyPool(width, words);
        // A tick of 1 ms, as with a short idleTimeout: values well past 2^32.
        let now = 1_700_000_000_000;
        const model = new Map<string, number>();
        const problems: string[] = [];
        const onLapsed = (sessionId: bigint, authKeyId: bigint | undefined) => {
          const name = modelKeyOfIds(width, sessionId, authKeyId);
          const deadline = model.get(name);
          if (deadline === undefined || !(now > deadline)) problems.push(`reported lapsed but not: ${name} (deadline ${deadline}, now ${now})`);
          model.delete(name);
        };
        const table = new SessionTable(width, Int32Array.of(seed, ~seed, seed * 5, seed ^ 0x27d4eb2d), now, onLapsed, 64);
        for (const [name, index, delta] of ops) {
          const key = keys[index % keys.length];
          const id = key.join(',');
          if (name === 'advance') {
            // Small steps, now and then back.
            now += index % 5 === 0 ? -delta : delta;
            continue;
          }
          if (name === 'jump') {
            // Far enough to rebase every segment, as a clock stepping forward by weeks does.
            now += 2 ** 31 + delta;
            continue;
          }
          if (name === 'sweep') {
            table.sweepZero(now);
            for (let segment = 0; segment < table.segmentCount; segment++) table.sweepSegment(segment, now, index % 2 === 0);
            for (const [left, deadline] of model) if (now > deadline) problems.push(`sweep left ${left} (deadline ${deadline}, now ${now})`);
            continue;
          }
          const found = table.find(...idsOf(key));
          if (found !== model.has(id)) problems.push(`${name} ${id}: found ${found}`);
          if (name === 'insert') {
            const deadline = now + delta;
            if (table.insert(now, deadline) === found) problems.push(`insert ${id}: inserted although found ${found}`);
            if (!found) model.set(id, deadline);
          } else if (name === 'remove') {
            if (table.remove() !== found) problems.push(`remove ${id}: removed although found ${found}`);
            model.delete(id);
          } else if (found && name === 'touch') {
            // Every third touch at the boundary: a deadline equal to `keep` stays as it is.
            const keep = index % 3 === 0 ? model.get(id)! : now + delta;
            const deadline = keep + (index % 100);
            table.touch(now, keep, deadline);
            if (model.get(id)! < keep) model.set(id, deadline);
          } else if (found && name === 'check') {
            const deadline = model.get(id)!;
            if (table.isLapsed(now) !== now > deadline) problems.push(`check ${id}: lapsed ${!(now > deadline)} at ${now}, deadline ${deadline}`);
            // A deadline left far behind by a rebase is kept only as lapsed.
            if (deadline >= now - 2 ** 29 && table.deadlineOf(now) !== deadline) problems.push(`check ${id}: deadline ${table.deadlineOf(now)}, model ${deadline}`);
          }
          if (table.size !== model.size) problems.push(`${name} ${id}: size ${table.size}, model ${model.size}`);
          if (problems.length > 0) break;
        }
        expect(problems.slice(0, 5)).toEqual([]);
        for (const key of keys) if (table.find(...idsOf(key)) !== model.has(key.join(','))) problems.push(`final ${key.join(',')}`);
        expect(problems.slice(0, 5)).toEqual([]);
        expect(segmentsOf(table).flatMap((segment) => checkSegment(table, segment))).toEqual([]);
      }),
      { numRuns: 40 },
    );
  });

  it('answers its sizes through its API: segments, slots from a segment on, and bytes', () => {
    const random = idGenerator(11);
    for (const expiring of [false, true]) {
      const table = new SessionTable(4, Int32Array.of(1, 2, 3, 4), expiring ? 1000 : undefined, () => {}, 64);
      for (let i = 0; i < 3000; i++) if (!table.find(random(), random())) table.insert(1000, 5000);
      expect(table.segmentCount).toBeGreaterThan(8);
      const caps = segmentsOf(table).map((segment) => segment.cap);
      for (let from = 0; from <= table.segmentCount; from++) expect(table.slotCount(from)).toBe(caps.slice(from).reduce((a, b) => a + b, 0));
      expect(table.byteSize()).toBe(table.slotCount() * (16 + (expiring ? 4 : 0)));
    }
  });
});

/** The model's name of the key that the ids make, in the words of {@link idsOf}. */
function modelKeyOfIds(width: 2 | 4, sessionId: bigint, authKeyId: bigint | undefined): string {
  const halves = (id: bigint) => [Number(BigInt.asIntN(32, id)), Number(BigInt.asIntN(32, id >> 32n))];
  return (width === 2 ? halves(sessionId) : [...halves(authKeyId!), ...halves(sessionId)]).join(',');
}
