/**
 * hasSession on the in-memory storage, the call made for every incoming
 * message: through SessionSubject, through the storage, against a bare
 * Set<bigint> and against a bare typed-array table written here.
 */
import { SessionSubject, InMemorySessionStorage } from '../../src/index.js';
import { BareTable } from '../bare-table.js';
import type { Suite } from '../harness.js';
import { IdStream, lookupIds } from '../ids.js';
import { expectEqual, RecordingLogger, sizeText } from '../support.js';

/** Sessions per auth key in the scoped figures. */
const SESSIONS_PER_KEY = 4;

export const inMemorySuite: Suite = {
  name: 'in-memory',
  description: 'hasSession on the in-memory storage, through the subject and directly, against Set<bigint> and a bare typed-array table',
  async run(ctx) {
    const n = ctx.pick({ quick: 10_000, default: 1_000_000 });
    const lookups = ctx.pick({ quick: 1 << 12, default: 1 << 20 });
    const expectedHits = lookups / 2;

    ctx.progress(`filling ${sizeText(n)} sessions into the storage, a Set and a bare table`);
    const random = new IdStream(1);
    const live = new BigInt64Array(n);
    for (let i = 0; i < n; i++) live[i] = random.next();
    const logger = new RecordingLogger();
    const storage = new InMemorySessionStorage();
    const subject = new SessionSubject(storage, { logger });
    const set = new Set<bigint>();
    const bare = new BareTable();
    for (let i = 0; i < n; i++) {
      const id = live[i];
      await storage.createSession(id);
      set.add(id);
      bare.add(id);
    }

    // The scoped case: the same number of sessions, SESSIONS_PER_KEY per auth key; the
    // missing half asks a known auth key for an unknown session, as a new session does.
    const scopedStorage = new InMemorySessionStorage();
    const scopedSubject = new SessionSubject(scopedStorage, { logger });
    const keys = new BigInt64Array(Math.ceil(n / SESSIONS_PER_KEY));
    for (let k = 0; k < keys.length; k++) keys[k] = random.next();
    for (let i = 0; i < n; i++) await scopedStorage.createSession(live[i], keys[Math.floor(i / SESSIONS_PER_KEY)]);

    const ids = lookupIds(live, n, lookups, 2);
    const scopedIds = new BigInt64Array(lookups);
    const scopedKeys = new BigInt64Array(lookups);
    const pick = new IdStream(3);
    for (let i = 0; i < lookups; i++) {
      const at = pick.below(n);
      scopedIds[i] = i % 2 === 0 ? live[at] : pick.next();
      scopedKeys[i] = keys[Math.floor(at / SESSIONS_PER_KEY)];
    }

    ctx.progress(`${lookups} lookups per round, half present, half absent`);
    const samples = await ctx.rates({
      subject: {
        ops: lookups,
        async run() {
          let hits = 0;
          for (let i = 0; i < lookups; i++) if (await subject.hasSession(ids[i])) hits++;
          expectEqual(hits, expectedHits, 'subject.hasSession hits');
        },
      },
      storage: {
        ops: lookups,
        async run() {
          let hits = 0;
          for (let i = 0; i < lookups; i++) if (await storage.hasSession(ids[i])) hits++;
          expectEqual(hits, expectedHits, 'storage.hasSession hits');
        },
      },
      scoped: {
        ops: lookups,
        async run() {
          let hits = 0;
          for (let i = 0; i < lookups; i++) if (await scopedSubject.hasSession(scopedIds[i], scopedKeys[i])) hits++;
          expectEqual(hits, expectedHits, 'scoped subject.hasSession hits');
        },
      },
      set: {
        ops: lookups,
        async run() {
          let hits = 0;
          for (let i = 0; i < lookups; i++) if (await set.has(ids[i])) hits++;
          expectEqual(hits, expectedHits, 'Set.has hits');
        },
      },
      bare: {
        ops: lookups,
        async run() {
          let hits = 0;
          for (let i = 0; i < lookups; i++) if (await bare.has(ids[i])) hits++;
          expectEqual(hits, expectedHits, 'bare table has hits');
        },
      },
    });
    logger.assertQuiet('the in-memory suite');

    const size = sizeText(n);
    const setBaseline = { label: 'await Set<bigint>.has', samples: samples.set };
    const params = { sessions: n, lookupsPerRound: lookups };
    ctx.figure({
      id: 'in-memory.subject-has-vs-set',
      label: `await subject.hasSession(id), ${size} sessions, vs Set`,
      unit: 'ops/s',
      better: 'higher',
      value: samples.subject,
      baseline: setBaseline,
      target: { ratio: 4 },
      params,
    });
    ctx.figure({
      id: 'in-memory.subject-has-vs-bare',
      label: `await subject.hasSession(id), ${size} sessions, vs bare table`,
      unit: 'ops/s',
      better: 'higher',
      value: samples.subject,
      baseline: { label: 'await bare typed-array table', samples: samples.bare },
      target: { ratio: 0.7 },
      params,
    });
    ctx.figure({
      id: 'in-memory.storage-has-vs-set',
      label: `await storage.hasSession(id), ${size} sessions, vs Set`,
      unit: 'ops/s',
      better: 'higher',
      value: samples.storage,
      baseline: setBaseline,
      params,
    });
    ctx.figure({
      id: 'in-memory.subject-has-scoped-vs-set',
      label: `await subject.hasSession(id, authKeyId), ${size} sessions, ${SESSIONS_PER_KEY} per auth key, vs Set`,
      unit: 'ops/s',
      better: 'higher',
      value: samples.scoped,
      baseline: setBaseline,
      params: { ...params, sessionsPerKey: SESSIONS_PER_KEY },
    });
    // Kept reachable to the end, so that no table is collected while another is timed.
    expectEqual(set.size + bare.size, 2 * n, 'baseline sizes');
  },
};
