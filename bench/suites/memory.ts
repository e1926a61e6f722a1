/**
 * Memory per live session and the cost of filling a storage: each fill runs in
 * a fresh `node --expose-gc` process, which measures heapUsed + external
 * (typed arrays and buffers; `external` includes `arrayBuffers`) after forced
 * collections, before and after the fill, with the storage still reachable.
 * The fill also times every batch of BATCH createSession calls: the longest
 * batch bounds the longest pause a caller saw (a rehash, a collection).
 */
import { type SessionLifetimeOptions, SessionSubject, InMemorySessionStorage } from '../../src/index.js';
import { BareTable } from '../bare-table.js';
import { collectGarbage, defineTask, heldBytes, type Json, type Suite } from '../harness.js';
import { IdStream } from '../ids.js';
import { RecordingLogger, sizeText } from '../support.js';

const BATCH = 1024;
/** Sessions per auth key in the scoped fill. */
const SESSIONS_PER_KEY = 4;
const IDLE_TIMEOUT = 60_000;

type Kind = 'set' | 'bare' | 'unscoped' | 'scoped' | 'idle';

interface FillParams {
  kind: Kind;
  n: number;
  seed: number;
}

/** What a fill reports; `failure` instead of figures when it could not complete. */
interface FillResult {
  [key: string]: Json;
  sessions: number;
  bytesPerSession: number;
  seconds: number;
  longestBatchMs: number;
  failure: string | null;
}

/** The storage constructor as it is once lifetime options land; until then it ignores its argument. */
const StorageWithOptions = InMemorySessionStorage as unknown as new (options?: SessionLifetimeOptions) => InMemorySessionStorage;

/**
 * Whether InMemorySessionStorage takes lifetime options: a storage that does
 * checks them, so a negative idleTimeout throws a TypeError.
 */
export function storageTakesIdleTimeout(): boolean {
  try {
    new StorageWithOptions({ idleTimeout: -1 });
    return false;
  } catch (error) {
    return error instanceof TypeError;
  }
}

interface Fillable {
  create(id: bigint, authKeyId: bigint | undefined): Promise<boolean>;
  has(id: bigint, authKeyId: bigint | undefined): Promise<boolean>;
  close(): Promise<void> | void;
}

function fillable(kind: Kind): Fillable {
  switch (kind) {
    case 'set': {
      const set = new Set<bigint>();
      return {
        create: async (id) => {
          const size = set.size;
          return set.add(id).size !== size;
        },
        has: async (id) => set.has(id),
        close: () => undefined,
      };
    }
    case 'bare': {
      const table = new BareTable();
      return { create: async (id) => table.add(id), has: async (id) => table.has(id), close: () => undefined };
    }
    default: {
      const storage = kind === 'idle' ? new StorageWithOptions({ idleTimeout: IDLE_TIMEOUT }) : new InMemorySessionStorage();
      // A subject on it, as an application has: a storage that announces expiry attaches to it.
      const subject = new SessionSubject(storage, { logger: new RecordingLogger() });
      return {
        create: (id, authKeyId) => storage.createSession(id, authKeyId),
        has: (id, authKeyId) => storage.hasSession(id, authKeyId),
        close: () => subject.close(),
      };
    }
  }
}

const FILL = defineTask('memory/fill', async (params) => {
  const { kind, n, seed } = params as unknown as FillParams;
  const random = new IdStream(seed);
  let authKeyId: bigint | undefined;
  await collectGarbage();
  const before = heldBytes();
  const target = fillable(kind);
  let created = 0;
  let longest = 0n;
  const start = process.hrtime.bigint();
  let failure: string | null = null;
  let firstId = 0n;
  let firstKey: bigint | undefined;
  try {
    for (let done = 0; done < n; ) {
      const batchEnd = Math.min(n, done + BATCH);
      const batchStart = process.hrtime.bigint();
      for (; done < batchEnd; done++) {
        if (kind === 'scoped' && done % SESSIONS_PER_KEY === 0) authKeyId = random.next();
        const id = random.next();
        if (done === 0) [firstId, firstKey] = [id, authKeyId];
        if (await target.create(id, authKeyId)) created++;
      }
      const took = process.hrtime.bigint() - batchStart;
      if (took > longest) longest = took;
    }
  } catch (error) {
    failure = `${error instanceof Error ? `${error.name}: ${error.message}` : String(error)} after ${created.toLocaleString('en-US')} sessions`;
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await collectGarbage();
  const after = heldBytes();
  // Used after the measurement, so that it was reachable during it.
  if (failure === null && !(await target.has(firstId, firstKey))) failure = 'the first session is missing after the fill';
  await target.close();
  const result: FillResult = { sessions: created, bytesPerSession: (after - before) / created, seconds, longestBatchMs: Number(longest) / 1e6, failure };
  return result;
});

export const memorySuite: Suite = {
  name: 'memory',
  description: 'bytes per live session after GC, fill time and longest pause, each fill in a fresh process',
  async run(ctx) {
    const n = ctx.pick({ quick: 50_000, default: 10_000_000 });
    const idle = storageTakesIdleTimeout();
    const kinds: Kind[] = idle ? ['set', 'unscoped', 'scoped', 'idle'] : ['set', 'unscoped', 'scoped'];
    const results = new Map<Kind, FillResult[]>(kinds.map((kind) => [kind, []]));
    for (let round = 0; round < ctx.options.memoryRounds; round++) {
      for (const kind of round % 2 === 0 ? kinds : [...kinds].reverse()) {
        ctx.progress(`round ${round + 1}/${ctx.options.memoryRounds}: ${sizeText(n)} sessions into ${kind}`);
        results.get(kind)!.push(await ctx.isolated<FillResult>(FILL, { kind, n, seed: 21 + round }));
      }
    }
    const failed = (kind: Kind) => results.get(kind)?.find((result) => result.failure !== null)?.failure ?? undefined;
    const samples = (kind: Kind, field: 'bytesPerSession' | 'seconds' | 'longestBatchMs') =>
      failed(kind) === undefined ? (results.get(kind)?.map((result) => result[field]) ?? null) : null;
    const setFailure = failed('set');
    if (setFailure !== undefined) throw new Error(`the Set baseline failed: ${setFailure}`);

    const size = sizeText(n);
    const setBytes = { label: 'Set<bigint>', samples: samples('set', 'bytesPerSession')! };
    const params = { sessions: n };
    ctx.figure({
      id: 'memory.unscoped-bytes',
      label: `bytes per live session after GC, ${size} unscoped`,
      unit: 'B/session',
      better: 'lower',
      value: samples('unscoped', 'bytesPerSession'),
      unavailable: failed('unscoped'),
      baseline: setBytes,
      target: { value: 12 },
      params,
    });
    ctx.figure({
      id: 'memory.scoped-bytes',
      label: `bytes per live session after GC, ${size} scoped by auth key (${SESSIONS_PER_KEY} per key)`,
      unit: 'B/session',
      better: 'lower',
      value: samples('scoped', 'bytesPerSession'),
      unavailable: failed('scoped'),
      baseline: setBytes,
      target: { value: 24 },
      params: { ...params, sessionsPerKey: SESSIONS_PER_KEY },
    });
    ctx.figure({
      id: 'memory.idle-bytes',
      label: `bytes per live session after GC, ${size} unscoped, idleTimeout on`,
      unit: 'B/session',
      better: 'lower',
      value: idle ? samples('idle', 'bytesPerSession') : null,
      unavailable: idle ? failed('idle') : 'InMemorySessionStorage takes no idleTimeout yet',
      baseline: setBytes,
      target: { value: 20 },
      params: { ...params, idleTimeout: IDLE_TIMEOUT },
    });
    ctx.figure({
      id: 'memory.fill-seconds',
      label: `fill ${size} sessions, await storage.createSession(id) each`,
      unit: 's',
      better: 'lower',
      value: samples('unscoped', 'seconds'),
      unavailable: failed('unscoped'),
      baseline: { label: 'await Set.add', samples: samples('set', 'seconds')! },
      params,
    });
    ctx.figure({
      id: 'memory.fill-longest-pause',
      label: `longest createSession pause filling ${size} (longest batch of ${BATCH})`,
      unit: 'ms',
      better: 'lower',
      value: samples('unscoped', 'longestBatchMs'),
      unavailable: failed('unscoped'),
      baseline: { label: 'Set.add', samples: samples('set', 'longestBatchMs')! },
      params: { ...params, batch: BATCH },
    });

    if (!ctx.options.capacity) return;
    // A Set holds at most 2^24 entries: the baseline at this size is the bare table.
    const big = ctx.pick({ quick: 100_000, default: 100_000_000 });
    ctx.progress(`capacity: ${sizeText(big)} sessions into the bare table, then into the storage`);
    const bare = await ctx.isolated<FillResult>(FILL, { kind: 'bare', n: big, seed: 31 });
    if (bare.failure !== null) throw new Error(`the bare table failed: ${bare.failure}`);
    const storage = await ctx.isolated<FillResult>(FILL, { kind: 'unscoped', n: big, seed: 31 });
    const bigSize = sizeText(big);
    const value = (field: 'bytesPerSession' | 'seconds' | 'longestBatchMs') => (storage.failure === null ? [storage[field]] : null);
    const unavailable = storage.failure ?? undefined;
    const bigParams = { sessions: big, batch: BATCH };
    ctx.figure({
      id: 'memory.capacity-seconds',
      label: `capacity: fill ${bigSize} sessions, await storage.createSession(id) each`,
      unit: 's',
      better: 'lower',
      value: value('seconds'),
      unavailable,
      baseline: { label: 'bare table', samples: [bare.seconds] },
      params: bigParams,
    });
    ctx.figure({
      id: 'memory.capacity-bytes',
      label: `capacity: bytes per live session after GC, ${bigSize} unscoped`,
      unit: 'B/session',
      better: 'lower',
      value: value('bytesPerSession'),
      unavailable,
      baseline: { label: 'bare table', samples: [bare.bytesPerSession] },
      target: { value: 12 },
      params: bigParams,
    });
    ctx.figure({
      id: 'memory.capacity-longest-pause',
      label: `capacity: longest createSession pause filling ${bigSize} (longest batch of ${BATCH})`,
      unit: 'ms',
      better: 'lower',
      value: value('longestBatchMs'),
      unavailable,
      baseline: { label: 'bare table', samples: [bare.longestBatchMs] },
      params: bigParams,
    });
  },
};
