import { randomFillSync } from 'node:crypto';
import { resolveInstanceId } from '../../core/instance-id.js';
import { SessionEvent } from '../../core/session-event.js';
import { checkIds, type AuthKeyId, type SessionId } from '../../core/session-id.js';
import { assertKnownOptions } from '../../core/known-options.js';
import { LIFETIME_OPTIONS, resolveLifetime, type SessionLifetime, type SessionLifetimeOptions } from '../../core/session-lifetime.js';
import { markChecksIds, type SessionStorage, type SessionTransitionSink } from '../../core/session-storage.js';
import { SessionLimitError } from '../../core/session-storage-errors.js';
import { toError } from '../../core/to-error.js';
import { SessionTable, tickLengthOf } from '../table/index.js';

const IN_MEMORY_OPTIONS = [...LIFETIME_OPTIONS, 'instanceId'];

/** Options of {@link InMemorySessionStorage}: the lifetime policy, and a name for this instance. */
export interface InMemorySessionStorageOptions extends SessionLifetimeOptions {
  /** Names this instance as the `origin` of the events it announces; a random UUID by default. */
  instanceId?: string;
}

/** A full sweep pass is spread over at most this many timer ticks. */
const PASS_TICKS = 16;
/** A tick may always scan this many slots (about a millisecond): tables this small are swept whole every tick. */
const TICK_SLOTS = 1 << 20;

// Bound once: a global lookup per call is slow where the global object is special (a vm context, as in jest).
const floor = Math.floor;

// Settled promises shared by every call that has nothing to wait for: the lookup path allocates nothing.
const RESOLVED_TRUE = Promise.resolve(true);
const RESOLVED_FALSE = Promise.resolve(false);

/**
 * The default storage: sessions in this process's memory, in a compact hash
 * table (about 11 bytes per session, 22 per auth-key-scoped one, plus 4 with
 * `idleTimeout`). Each call makes its whole change before it resolves, so it
 * is atomic. Unscoped sessions and those of each auth key are separate scopes.
 *
 * With `maxSessions`, creating a session past the limit rejects with
 * `SessionLimitError` and changes nothing. With `idleTimeout`, a session lapses
 * between `idleTimeout` and `idleTimeout + touchSlack` after its last
 * `createSession`, or `hasSession` that found it, and is gone for every method
 * from then on. Its expiry is announced once (`destroyed`, reason `'expired'`),
 * by the first call that comes across it or by the sweep, which runs every
 * `sweepInterval` and announces it within 32 × `sweepInterval` (within one
 * `sweepInterval` up to about 740k sessions). `count()` includes lapsed
 * sessions that neither has come across yet.
 *
 * Once {@link attach}ed to a sink (`SessionSubject` does it), the storage
 * announces every transition itself, with this instance as `origin`, and
 * `createSession`/`destroySession` resolve after their announcement has
 * settled. Without a sink, expiry removes sessions silently.
 */
export class InMemorySessionStorage implements SessionStorage {
  static {
    // Its hasSession checks ids itself, so SessionSubject forwards lookups without checking them again.
    markChecksIds(this.prototype.hasSession);
  }

  /** The `origin` of the events this instance announces. */
  readonly instanceId: string;
  private readonly lifetime: SessionLifetime;
  /** Whether sessions expire (`idleTimeout`). */
  private readonly expiring: boolean;
  /** Milliseconds per deadline tick. */
  private readonly tickLength: number;
  // The clock as the current operation last read it, in ticks (see readClock); passed to the tables, which hold no clock.
  /** The current tick. */
  private now = 0;
  /** A touched session's deadline must be at least this (the tick of now + idleTimeout). */
  private keep = 0;
  /** The deadline a created or refreshed session gets (the last tick before now + idleTimeout + touchSlack). */
  private deadline = 0;
  private readonly unscoped: SessionTable;
  /** Keyed by (auth key id, session id). */
  private readonly scoped: SessionTable;
  private sink: SessionTransitionSink | undefined;
  /** Expiries found during the current operation, announced when it has finished changing the tables. */
  private lapsed: SessionEvent[] | undefined;
  /** Expired sessions so far (for {@link expireIdleSessions}'s result). */
  private expired = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  private timerStopped = false;
  /** Where the sweep goes on: table (0 unscoped, 1 scoped), then segment, and how many ticks the pass has taken. */
  private cursorTable = 0;
  private cursorSegment = 0;
  private passTicks = 0;

  constructor(options: InMemorySessionStorageOptions = {}) {
    if (options === null || typeof options !== 'object') {
      throw new TypeError(`InMemorySessionStorage options must be an object; got ${options === null ? 'null' : typeof options}`);
    }
    assertKnownOptions(options, IN_MEMORY_OPTIONS, 'InMemorySessionStorage');
    this.lifetime = resolveLifetime(options, 'InMemorySessionStorage');
    this.instanceId = resolveInstanceId(options.instanceId, 'InMemorySessionStorage');
    this.expiring = this.lifetime.idleTimeout !== undefined;
    this.tickLength = tickLengthOf(this.lifetime);
    if (this.expiring) this.readClock();
    const startTick = this.expiring ? this.now : undefined;
    const seeds = randomFillSync(new Int32Array(8));
    const onLapsed = (sessionId: SessionId, authKeyId: AuthKeyId | undefined) => this.announceLater(sessionId, authKeyId);
    this.unscoped = new SessionTable(2, seeds.subarray(0, 4), startTick, onLapsed);
    this.scoped = new SessionTable(4, seeds.subarray(4, 8), startTick, onLapsed);
  }

  createSession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
    const invalid = checkIds(sessionId, authKeyId);
    if (invalid !== undefined) return Promise.reject(invalid);
    const table = authKeyId === undefined ? this.unscoped : this.scoped;
    const expiring = this.expiring;
    if (this.findLive(table, sessionId, authKeyId)) {
      if (expiring) table.touch(this.now, this.keep, this.deadline);
      return RESOLVED_FALSE;
    }
    // The new session's deadline, and reclaim, go by the clock (read again if findLive came across a lapsed one).
    if (expiring) this.readClock();
    const limit = this.lifetime.maxSessions;
    if (limit !== undefined && this.unscoped.size + this.scoped.size >= limit) {
      if (expiring) this.reclaim(limit);
      if (this.unscoped.size + this.scoped.size >= limit) return this.finishRejected(new SessionLimitError(limit, this.unscoped.size + this.scoped.size));
    }
    table.insert(this.now, this.deadline);
    if (expiring && this.timer === undefined) this.startTimer();
    return this.finish(true, this.sink && new SessionEvent('created', sessionId, authKeyId, { origin: this.instanceId }));
  }

  hasSession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
    const invalid = checkIds(sessionId, authKeyId);
    if (invalid !== undefined) return Promise.reject(invalid);
    const table = authKeyId === undefined ? this.unscoped : this.scoped;
    if (!this.findLive(table, sessionId, authKeyId)) return this.finish(false, undefined);
    if (this.expiring) table.touch(this.now, this.keep, this.deadline);
    return RESOLVED_TRUE;
  }

  destroySession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
    const invalid = checkIds(sessionId, authKeyId);
    if (invalid !== undefined) return Promise.reject(invalid);
    const table = authKeyId === undefined ? this.unscoped : this.scoped;
    if (!this.findLive(table, sessionId, authKeyId)) return this.finish(false, undefined);
    table.remove();
    return this.finish(true, this.sink && new SessionEvent('destroyed', sessionId, authKeyId, { origin: this.instanceId }));
  }

  /** Live sessions over all scopes, counting lapsed ones that no operation or sweep has come across yet. O(1). */
  count(): Promise<number> {
    return Promise.resolve(this.unscoped.size + this.scoped.size);
  }

  /**
   * Sweeps the whole table now: removes every lapsed session, announces each
   * expiry, and resolves with how many there were once the announcements have
   * settled. Resolves 0 without `idleTimeout`.
   */
  expireIdleSessions(): Promise<number> {
    if (!this.expiring) return Promise.resolve(0);
    const before = this.expired;
    this.readClock();
    let pending: Promise<unknown>[] | undefined;
    for (const table of [this.unscoped, this.scoped]) {
      table.sweepZero(this.now);
      // Announced segment by segment: the table is consistent between segments, and few events are held at once.
      for (let segment = 0; segment < table.segmentCount; segment++) {
        table.sweepSegment(segment, this.now, true);
        pending = this.announceLapsed(pending);
      }
    }
    const expired = this.expired - before;
    return pending === undefined ? Promise.resolve(expired) : Promise.all(pending).then(() => expired);
  }

  /** Announces every transition to `sink` from now on (see {@link SessionStorage.attach}). Takes one sink. */
  attach(sink: SessionTransitionSink): void {
    if (this.sink !== undefined) throw new TypeError(`InMemorySessionStorage ${this.instanceId} is attached to a sink already; it takes one`);
    if (typeof (sink as Partial<SessionTransitionSink> | null)?.announce !== 'function') {
      throw new TypeError('InMemorySessionStorage.attach() needs a sink with an announce(event) method');
    }
    this.sink = sink;
  }

  /** Stops the sweep timer. Sessions stay usable; lapsed ones are still noticed by the operations that come across them. Idempotent. */
  close(): void {
    this.timerStopped = true;
    if (this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /**
   * Looks a session up in `table` (and reads the clock when it finds one and
   * sessions expire): whether it is there and live. A lapsed one is removed on
   * the spot and its expiry queued, so that every method sees it gone.
   */
  private findLive(table: SessionTable, sessionId: SessionId, authKeyId: AuthKeyId | undefined): boolean {
    if (!table.find(sessionId, authKeyId)) return false;
    if (!this.expiring) return true;
    this.readClock();
    if (!table.isLapsed(this.now)) return true;
    table.remove();
    this.announceLater(sessionId, authKeyId);
    return false;
  }

  /** Reads the clock into {@link now}, {@link keep} and {@link deadline}. Only when sessions expire. */
  private readClock(): void {
    const { clock, idleTimeout, touchSlack } = this.lifetime;
    const now = clock();
    const length = this.tickLength;
    this.now = floor(now / length);
    this.keep = floor((now + idleTimeout!) / length);
    // touchSlack >= tickLength, so this lands within (now + idleTimeout, now + idleTimeout + touchSlack].
    this.deadline = floor((now + idleTimeout! + touchSlack) / length) - 1;
  }

  /** A sweep or an operation came across a lapsed session and removed it. */
  private announceLater(sessionId: SessionId, authKeyId: AuthKeyId | undefined): void {
    this.expired++;
    if (this.sink !== undefined) this.queueExpired(sessionId, authKeyId);
  }

  private queueExpired(sessionId: SessionId, authKeyId: AuthKeyId | undefined): void {
    (this.lapsed ??= []).push(new SessionEvent('destroyed', sessionId, authKeyId, { reason: 'expired', origin: this.instanceId }));
  }

  /**
   * Announces, in order, the expiries queued during the operation and then its
   * own transition, once the tables are consistent again (an observer may call
   * back into the storage), and resolves `value` when every announcement has settled.
   */
  private finish(value: boolean, event: SessionEvent | undefined): Promise<boolean> {
    if (event === undefined && this.lapsed === undefined) return value ? RESOLVED_TRUE : RESOLVED_FALSE;
    const settling = this.announceQueued(event);
    if (settling === undefined) return value ? RESOLVED_TRUE : RESOLVED_FALSE;
    return settling.then(() => value);
  }

  private finishRejected(error: Error): Promise<never> {
    const settling = this.announceQueued(undefined);
    if (settling === undefined) return Promise.reject(error);
    return settling.then(() => Promise.reject(error));
  }

  private announceQueued(event: SessionEvent | undefined): Promise<unknown> | undefined {
    let pending = this.announceLapsed(undefined);
    if (event !== undefined && this.sink !== undefined) pending = this.announce(this.sink, event, pending);
    if (pending === undefined) return undefined;
    return pending.length === 1 ? pending[0] : Promise.all(pending);
  }

  /** Announces the queued expiries, adding what is still settling to `pending`. */
  private announceLapsed(pending: Promise<unknown>[] | undefined): Promise<unknown>[] | undefined {
    const lapsed = this.lapsed;
    if (lapsed === undefined) return pending;
    this.lapsed = undefined;
    const sink = this.sink;
    if (sink !== undefined) for (const expiry of lapsed) pending = this.announce(sink, expiry, pending);
    return pending;
  }

  /** Announces one event; a sink that throws or rejects is logged, never undoing the change. */
  private announce(sink: SessionTransitionSink, event: SessionEvent, pending: Promise<unknown>[] | undefined): Promise<unknown>[] | undefined {
    let result: unknown;
    try {
      result = sink.announce(event);
    } catch (error) {
      this.reportSinkFailure(sink, event, error);
      return pending;
    }
    if (typeof (result as PromiseLike<unknown> | undefined)?.then !== 'function') return pending;
    const settled = Promise.resolve(result).then(undefined, (error: unknown) => this.reportSinkFailure(sink, event, error));
    (pending ??= []).push(settled);
    return pending;
  }

  private reportSinkFailure(sink: SessionTransitionSink, event: SessionEvent, error: unknown): void {
    const cause = toError(error);
    sink.logger.error(`InMemorySessionStorage ${this.instanceId} could not announce '${event.type}' of session ${event.sessionId}: ${cause.message}`, cause.stack);
  }

  /** Removes lapsed sessions until there are fewer than `limit`, or none is left to remove. */
  private reclaim(limit: number): void {
    for (const table of [this.unscoped, this.scoped]) {
      table.sweepZero(this.now);
      for (let segment = 0; segment < table.segmentCount; segment++) {
        if (this.unscoped.size + this.scoped.size < limit) return;
        table.sweepSegment(segment, this.now, true);
      }
    }
  }

  /** The sweep timer: one, unref'd, started by the first session and stopped by {@link close}. */
  private startTimer(): void {
    if (this.timerStopped) return;
    this.timer = setInterval(() => {
      try {
        this.sweepTick();
      } catch (error) {
        // A throwing clock, say: report it rather than take the process down from a timer.
        const cause = toError(error);
        (this.sink?.logger ?? console).error(`InMemorySessionStorage ${this.instanceId} sweep failed: ${cause.message}`, cause.stack);
      }
    }, this.lifetime.sweepInterval);
    this.timer.unref?.();
  }

  /**
   * One timer tick: goes on with the current pass over both tables, resumed
   * where the last tick stopped. It scans at most max(2^20 slots, slots left in
   * the pass / ticks left of its 16), and passes over a segment whose earliest
   * deadline is still ahead at no cost; so a pass takes at most 16 ticks
   * however the table grows meanwhile, and just one up to 2^20 slots (about
   * 740k sessions). A session that lapses just after the pass went by is found
   * by the next one: announced within 2 × 16 × `sweepInterval` of lapsing,
   * within one `sweepInterval` up to 2^20 slots, unless a call came across it
   * first.
   */
  private sweepTick(): void {
    this.readClock();
    const tables = [this.unscoped, this.scoped];
    if (this.cursorTable === 0 && this.cursorSegment === 0) {
      this.unscoped.sweepZero(this.now);
      this.scoped.sweepZero(this.now);
    }
    let left = 0;
    for (let t = this.cursorTable; t < tables.length; t++) left += tables[t].slotCount(t === this.cursorTable ? this.cursorSegment : 0);
    let budget = Math.max(TICK_SLOTS, Math.ceil(left / Math.max(1, PASS_TICKS - this.passTicks)));
    this.passTicks++;
    for (;;) {
      // Past the last segment of a table: on to the next one, or the pass is complete.
      while (this.cursorTable < tables.length && this.cursorSegment >= tables[this.cursorTable].segmentCount) {
        this.cursorTable++;
        this.cursorSegment = 0;
      }
      if (this.cursorTable === tables.length) {
        this.cursorTable = 0;
        this.passTicks = 0;
        break;
      }
      if (budget <= 0) break;
      const table = tables[this.cursorTable];
      // A segment whose earliest deadline is still ahead costs nothing to pass over.
      budget -= table.sweepSegment(this.cursorSegment++, this.now, true);
      // Announcements never reject (failures are logged), so nothing is left unhandled.
      this.announceLapsed(undefined);
    }
    this.announceLapsed(undefined);
  }
}
