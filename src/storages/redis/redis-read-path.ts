import type { AuthKeyId, SessionId } from '../../core/session-id.js';
import type { SessionLifetime } from '../../core/session-lifetime.js';
import type { SessionLogger } from '../../core/session-logger.js';
import type { SessionTransitionSink } from '../../core/session-storage.js';
import { backoffDelay, sleep } from './backoff.js';
import type { Deadlines } from './deadlines.js';
import type { RedisConnection } from './redis-connection.js';
import { bounded, describeRedisFailure } from './redis-failures.js';
import { sessionMember, type RedisSessionKeys } from './redis-keys.js';
import { REPLICA_LIVE, REPLICA_TOUCH_DUE, type RedisReplica } from './redis-replica.js';
import type { RedisStreamCursor } from './redis-stream-cursor.js';
import type { TransitionEntry } from './redis-stream-entry.js';
import { replicaMessages } from './redis-storage.messages.js';
import { touchSessionsScript } from './scripts/touch-sessions.script.js';

/** Members per ZSCAN reply while seeding: one batch is well under a millisecond of work here. */
const SEED_BATCH = 1000;
/** Sessions per background touch script. */
const TOUCH_BATCH = 500;

interface PendingTouch {
  readonly member: string;
  readonly sessionId: SessionId;
  readonly authKeyId: AuthKeyId | undefined;
}

/** Settled once, shared by every lookup the replica answers: that path allocates nothing. */
const RESOLVED_TRUE = Promise.resolve(true);

/**
 * How one key group answers `hasSession`: from its replica when it holds the
 * session as live (no Redis command), else from Redis. It also keeps the
 * replica: applies the stream's entries, seeds it once the group's stream
 * position is known, rebuilds it after missed events, and touches in the
 * background the sessions it answered that are due for one (at most one
 * touch per session queued or in flight; what one synchronous run queued
 * goes out as one script, which node-redis pipelines with the tick's other
 * commands). See RedisReplica for why seeding converges.
 */
export class RedisReadPath {
  private readonly expiring: boolean;
  /** Members with a background touch queued or in flight. */
  private readonly touching = new Set<string>();
  private pendingTouches: PendingTouch[] = [];
  private touchFlushScheduled = false;
  private closed = false;
  private readonly describeLookupFailure = (error: unknown): Error => describeRedisFailure(error, 'hasSession');
  /** Where failed lookups are counted once a subject attached (SessionTransitionSink.lookupFailed). */
  private sink: SessionTransitionSink | undefined;
  private readonly lookupFailed = (error: unknown): never => {
    this.sink?.lookupFailed?.(error);
    throw error;
  };

  constructor(
    private readonly keys: RedisSessionKeys,
    /** This instance's copy of the group's live sessions; none without localReads. */
    private readonly replica: RedisReplica | undefined,
    /** Asked to start reading by the first lookup the replica cannot answer yet. */
    private readonly cursor: RedisStreamCursor,
    private readonly connection: RedisConnection,
    private readonly deadlines: Deadlines,
    private readonly lifetime: SessionLifetime,
    private readonly logger: SessionLogger,
  ) {
    this.expiring = lifetime.idleTimeout !== undefined;
    if (replica === undefined) return;
    // Every entry from the stream position on is applied while the scan runs; the scan starts once the position is known.
    const generation = replica.beginSeed();
    cursor.ready.then(() => this.scan(replica, generation), () => undefined);
  }

  /** Whether the session is live; with idleTimeout, a lookup is a touch. */
  has(sessionId: SessionId, authKeyId: AuthKeyId | undefined): Promise<boolean> {
    const replica = this.replica;
    if (replica !== undefined) {
      // Within its lease only: past it, the reader may have missed what Redis did meanwhile (maxStaleness).
      if (replica.live && this.cursor.withinLease) {
        const answer = replica.lookup(sessionId, authKeyId);
        if (answer === REPLICA_LIVE) return RESOLVED_TRUE;
        if (answer === REPLICA_TOUCH_DUE) {
          this.touchLater(sessionId, authKeyId);
          return RESOLVED_TRUE;
        }
        // Not held, or its known deadline has passed: Redis decides.
      } else if (!replica.live) {
        this.cursor.requestReading();
      }
    }
    const connection = this.connection;
    if (this.expiring) return this.counted(this.deadlines.bound(connection.afterReady(() => this.touch(sessionId, authKeyId)), 'hasSession', this.describeLookupFailure));
    const member = sessionMember(sessionId, authKeyId);
    // Once ready, no closure and no promise beyond the command's and the bound's.
    let score: Promise<number | null>;
    if (!connection.waiting) {
      try {
        score = connection.client.zScore(this.keys.sessions, member);
      } catch (error) {
        // node-redis throws synchronously on a closed client.
        score = Promise.reject(error);
      }
    } else {
      score = connection.afterReady(() => connection.client.zScore(this.keys.sessions, member));
    }
    return this.counted(this.deadlines.bound(score, 'hasSession', this.describeLookupFailure, isPresent));
  }

  /** Counts failed lookups from now on (the subject's storage error metrics). */
  attach(sink: SessionTransitionSink): void {
    this.sink = sink;
  }

  /** A lookup that went to Redis, its failure counted: the replica's answers, the hot path, never fail and pay nothing. */
  private counted(lookup: Promise<boolean>): Promise<boolean> {
    return this.sink?.lookupFailed === undefined ? lookup : lookup.catch(this.lookupFailed);
  }

  /** Resolves once the replica answers lookups (reading starts if it had not), at once without one. */
  whenLocal(): Promise<void> {
    const replica = this.replica;
    if (replica === undefined || replica.live) return Promise.resolve();
    this.cursor.requestReading();
    return replica.seeded;
  }

  /** A transition entry of the group's stream, in stream order. */
  apply(entry: TransitionEntry): void {
    const replica = this.replica;
    if (replica === undefined) return;
    const { event, member, deadline } = entry;
    if (event.type === 'created') replica.add(member, event.sessionId, event.authKeyId, deadline);
    else replica.remove(member, event.sessionId, event.authKeyId);
  }

  /** Whether the replica answers lookups now: seeded and within its lease; undefined without one. */
  get answersLocally(): boolean | undefined {
    return this.replica === undefined ? undefined : this.replica.live && this.cursor.withinLease;
  }

  /**
   * A call of this instance's own failed and may have destroyed the session
   * (a timeout, a broken connection): the replica lets go of it, so lookups
   * ask Redis until an entry says what happened.
   */
  forget(member: string, sessionId: SessionId, authKeyId: AuthKeyId | undefined): void {
    this.replica?.remove(member, sessionId, authKeyId);
  }

  /**
   * Whether the replica, at the stream position where Redis's sorted set held
   * `sessions`, holds more sessions than Redis: the set was deleted or
   * evicted, or Redis lost data. It may rightly hold fewer: lapsed sessions it
   * dropped, and those it let go of after an own destroy failed (lookups of
   * them ask Redis); never more.
   */
  diverges(sessions: number): boolean {
    const replica = this.replica;
    return replica !== undefined && replica.live && replica.size > sessions;
  }

  /** The replica may lack what missed entries did: it is rebuilt from the sorted set. */
  rebuild(): void {
    const replica = this.replica;
    if (replica === undefined || this.closed) return;
    void this.scan(replica, replica.beginSeed());
  }

  close(): void {
    this.closed = true;
    this.replica?.clear();
    for (const touch of this.pendingTouches) this.touching.delete(touch.member);
    this.pendingTouches = [];
  }

  /** A lookup with idleTimeout: whether the session is live, pushing its deadline when due; the replica learns the deadline. */
  private async touch(sessionId: SessionId, authKeyId: AuthKeyId | undefined): Promise<boolean> {
    const { lifetime } = this;
    const now = lifetime.clock();
    const idleTimeout = lifetime.idleTimeout!;
    const [deadline] = await this.connection.run(touchSessionsScript, this.keys, {
      now, idleTimeout, deadline: now + idleTimeout + lifetime.touchSlack, members: [sessionMember(sessionId, authKeyId)],
    });
    const live = deadline !== undefined && deadline > 0;
    this.replica?.confirm(sessionId, authKeyId, live ? deadline : undefined);
    return live;
  }

  /** Queues a touch of a session; nothing if one is queued or in flight. */
  private touchLater(sessionId: SessionId, authKeyId: AuthKeyId | undefined): void {
    const member = sessionMember(sessionId, authKeyId);
    if (this.touching.has(member)) return;
    this.touching.add(member);
    this.pendingTouches.push({ member, sessionId, authKeyId });
    if (this.touchFlushScheduled) return;
    this.touchFlushScheduled = true;
    // A microtask: the touches go out before any call made after this lookup, so Redis sees them in that order.
    queueMicrotask(() => this.flushTouches());
  }

  private flushTouches(): void {
    this.touchFlushScheduled = false;
    const queued = this.pendingTouches;
    this.pendingTouches = [];
    for (let at = 0; at < queued.length; at += TOUCH_BATCH) this.sendTouches(queued.slice(at, at + TOUCH_BATCH));
  }

  private sendTouches(batch: PendingTouch[]): void {
    const { lifetime } = this;
    const now = lifetime.clock();
    const idleTimeout = lifetime.idleTimeout!;
    const members = batch.map((touch) => touch.member);
    const done = (): void => {
      for (const member of members) this.touching.delete(member);
    };
    const touch = this.connection.run(touchSessionsScript, this.keys, { now, idleTimeout, deadline: now + idleTimeout + lifetime.touchSlack, members });
    bounded(this.deadlines, touch, 'touching sessions').then(
      (deadlines) => {
        done();
        if (this.closed) return;
        batch.forEach((touched, i) => this.replica!.confirm(touched.sessionId, touched.authKeyId, deadlines[i]! > 0 ? deadlines[i] : undefined));
      },
      // Not confirmed: the replica keeps the deadline it had, and once that has passed, a lookup asks Redis.
      done,
    );
  }
  /** Scans the sorted set in batches into the replica, retrying (from the same cursor) while Redis is away. */
  private async scan(replica: RedisReplica, generation: number): Promise<void> {
    const { connection } = this;
    let cursor = '0';
    let failures = 0;
    while (!this.closed && replica.generation === generation) {
      try {
        const reply = await bounded(this.deadlines, connection.afterReady(() => connection.client.zScan(this.keys.sessions, cursor, { COUNT: SEED_BATCH })), 'seeding the replica');
        if (failures > 0) this.logger.warn(replicaMessages.seedResumed(this.keys.sessions));
        failures = 0;
        replica.seedBatch(generation, reply.members);
        cursor = String(reply.cursor);
        if (cursor === '0') {
          replica.endSeed(generation);
          return;
        }
      } catch (error) {
        // Lookups go to Redis until the seed completes. A seed cut short by close() is no failure to report.
        if (this.closed) return;
        if (failures === 0) this.logger.warn(replicaMessages.seedFailed(this.keys.sessions, error));
        failures++;
        await sleep(backoffDelay(failures));
      }
    }
  }
}

function isPresent(score: number | null): boolean {
  return score !== null;
}
