import { randomFillSync } from 'node:crypto';
import type { AuthKeyId, SessionId } from '../../core/session-id.js';
import type { SessionLifetime } from '../../core/session-lifetime.js';
import { DEADLINE_SPAN_TICKS, SessionTable, tickLengthOf } from '../table/index.js';
import { parseMember } from './redis-keys.js';

/** What {@link RedisReplica.lookup} knows of a session: not held (or not seeded yet), so ask Redis. */
export const REPLICA_UNKNOWN = 0;
/** Live, with its deadline (when sessions expire) not due for a touch. */
export const REPLICA_LIVE = 1;
/** Live, but its known deadline is less than idleTimeout away: answer true and touch it in the background. */
export const REPLICA_TOUCH_DUE = 2;
/** Its known deadline has passed; Redis may have pushed it since, so ask Redis. */
export const REPLICA_LAPSED = 3;
export type ReplicaAnswer = typeof REPLICA_UNKNOWN | typeof REPLICA_LIVE | typeof REPLICA_TOUCH_DUE | typeof REPLICA_LAPSED;

const floor = Math.floor;

/**
 * This instance's copy of one key group's live sessions, in the compact table
 * `InMemorySessionStorage` uses (two of them: unscoped and auth-key-scoped).
 *
 * It changes only by what Redis says: the group's stream entries, applied in
 * order as the reader reads them; a seed scan of the sorted set; and touch
 * replies, which only ever raise a held session's deadline or drop it. A reply
 * to a lookup never adds a session: it may predate a destroy already applied.
 *
 * With idleTimeout each session keeps the deadline Redis last confirmed (from
 * its created entry, the seed scan, or a touch reply), rounded down to a tick
 * and stored one tick early, so it is a lower bound of the real one: the
 * replica never answers `true` past a deadline Redis still holds.
 *
 * Seeding (at start and after every SessionEventsMissed): {@link beginSeed}
 * empties the tables and marks the replica not live; from then on every entry
 * the reader reads is applied and its member remembered; scan batches
 * ({@link seedBatch}) add only members no entry has mentioned; {@link endSeed}
 * makes it live. Why that converges to Redis's set: the reader's position was
 * fixed before the scan began, so every transition during the scan has an
 * entry that is applied. A member some entry mentioned ends in the state of
 * its last entry, which is Redis's. A member no entry mentioned did not change
 * during the scan, and SCAN returns every member present for the whole scan
 * and none absent for the whole scan, so the scan has it right.
 */
export class RedisReplica {
  /** Whether lookups may be answered here: seeded, and not rebuilding. */
  live = false;
  /** Counts seeds; a scan of an older one stops at its next batch. */
  generation = 0;
  private unscoped: SessionTable;
  private scoped: SessionTable;
  /** Whether sessions expire (`idleTimeout`): then each held one has the deadline Redis last confirmed. */
  private readonly expiring: boolean;
  private readonly tickLength: number;
  /** The tick the clock was last read at. */
  private now = 0;
  /** Resolves when the current (or next) seed completes. */
  seeded: Promise<void>;
  private markSeeded: () => void = () => undefined;
  /** Members that an entry changed during the current seed; the scan leaves them alone. */
  private changed: Set<string> | undefined;

  constructor(private readonly lifetime: SessionLifetime) {
    this.expiring = lifetime.idleTimeout !== undefined;
    this.tickLength = tickLengthOf(lifetime);
    if (this.expiring) this.now = floor(lifetime.clock() / this.tickLength);
    this.seeded = new Promise((resolve) => (this.markSeeded = resolve));
    const seeds = randomFillSync(new Int32Array(8));
    // Lapsed entries dropped to make room are simply no longer held: lookups of them ask Redis.
    const onLapsed = (): void => undefined;
    const startTick = this.expiring ? this.now : undefined;
    this.unscoped = new SessionTable(2, seeds.subarray(0, 4), startTick, onLapsed);
    this.scoped = new SessionTable(4, seeds.subarray(4, 8), startTick, onLapsed);
  }

  /** Sessions held. */
  get size(): number {
    return this.unscoped.size + this.scoped.size;
  }

  /** Bytes of the tables' typed arrays, for memory figures. */
  byteSize(): number {
    return this.unscoped.byteSize() + this.scoped.byteSize();
  }

  /** What the replica knows of a session; only meaningful while {@link live}. */
  lookup(sessionId: SessionId, authKeyId: AuthKeyId | undefined): ReplicaAnswer {
    const table = this.tableFor(authKeyId);
    if (!table.find(sessionId, authKeyId)) return REPLICA_UNKNOWN;
    if (!this.expiring) return REPLICA_LIVE;
    const now = this.readClock();
    const deadline = table.deadlineOf(now);
    if (deadline < now) return REPLICA_LAPSED;
    return (deadline - now) * this.tickLength < this.lifetime.idleTimeout! ? REPLICA_TOUCH_DUE : REPLICA_LIVE;
  }

  /** A created entry (or a seeded member); `deadline` in ms as Redis holds it, when sessions expire. */
  add(member: string, sessionId: SessionId, authKeyId: AuthKeyId | undefined, deadline: number | undefined): void {
    this.changed?.add(member);
    this.put(sessionId, authKeyId, deadline);
  }

  /** A destroyed or expired entry. */
  remove(member: string, sessionId: SessionId, authKeyId: AuthKeyId | undefined): void {
    this.changed?.add(member);
    this.drop(sessionId, authKeyId);
  }

  /** A touch reply: Redis holds the session with `deadline` (raised if lower here), or no longer (`undefined`: dropped). */
  confirm(sessionId: SessionId, authKeyId: AuthKeyId | undefined, deadline: number | undefined): void {
    if (deadline === undefined) {
      this.drop(sessionId, authKeyId);
      return;
    }
    const table = this.tableFor(authKeyId);
    if (!this.expiring || !table.find(sessionId, authKeyId)) return;
    const now = this.readClock();
    const tick = this.tickOf(deadline, now);
    table.touch(now, tick, tick);
  }

  /** Starts a seed (see the class comment); returns its generation. */
  beginSeed(): number {
    if (this.live) this.seeded = new Promise((resolve) => (this.markSeeded = resolve));
    this.live = false;
    this.changed = new Set();
    this.clearTables();
    return ++this.generation;
  }

  /** Adds the members of one scan batch that no entry has mentioned since the seed began. */
  seedBatch(generation: number, members: readonly { value: string; score: number }[]): void {
    if (generation !== this.generation) return;
    const changed = this.changed!;
    for (const { value, score } of members) {
      if (changed.has(value)) continue;
      const ids = parseMember(value);
      if (ids !== undefined) this.put(ids[0], ids[1], score);
    }
  }

  endSeed(generation: number): void {
    if (generation !== this.generation) return;
    this.changed = undefined;
    this.live = true;
    this.markSeeded();
  }

  /** Stops answering (a rebuild is about to start, or the storage closes). */
  clear(): void {
    this.live = false;
    this.changed = undefined;
    this.generation++;
    this.clearTables();
  }

  private put(sessionId: SessionId, authKeyId: AuthKeyId | undefined, deadline: number | undefined): void {
    const table = this.tableFor(authKeyId);
    let now = 0;
    let tick = 0;
    if (this.expiring) {
      now = this.readClock();
      // Unknown (an entry without one): already due, so the first lookup asks Redis.
      tick = deadline === undefined ? now - 1 : this.tickOf(deadline, now);
    }
    if (table.find(sessionId, authKeyId)) {
      // Raised to the tick Redis holds, never lowered.
      if (this.expiring) table.touch(now, tick, tick);
      return;
    }
    table.insert(now, tick);
  }

  private drop(sessionId: SessionId, authKeyId: AuthKeyId | undefined): void {
    const table = this.tableFor(authKeyId);
    if (table.find(sessionId, authKeyId)) table.remove();
  }

  /** A deadline in ms as the tick before its own, so `now tick <= deadline tick` implies now < deadline; capped to what the ticks can hold. */
  private tickOf(deadline: number, now: number): number {
    const tick = floor(deadline / this.tickLength) - 1;
    const cap = now + DEADLINE_SPAN_TICKS;
    return tick > cap ? cap : tick < now - 1 ? now - 1 : tick;
  }

  private readClock(): number {
    const now = floor(this.lifetime.clock() / this.tickLength);
    this.now = now;
    return now;
  }

  private clearTables(): void {
    // Tables have no clear(); removing entry by entry would cost more than dropping them.
    const seeds = randomFillSync(new Int32Array(8));
    const onLapsed = (): void => undefined;
    const startTick = this.expiring ? this.now : undefined;
    this.unscoped = new SessionTable(2, seeds.subarray(0, 4), startTick, onLapsed);
    this.scoped = new SessionTable(4, seeds.subarray(4, 8), startTick, onLapsed);
  }

  /** The table of a scope: unscoped, or auth-key-scoped. */
  private tableFor(authKeyId: AuthKeyId | undefined): SessionTable {
    return authKeyId === undefined ? this.unscoped : this.scoped;
  }
}
