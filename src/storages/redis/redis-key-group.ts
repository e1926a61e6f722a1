import type { AuthKeyId, SessionId } from '../../core/session-id.js';
import type { SessionLifetime } from '../../core/session-lifetime.js';
import type { SessionLogger } from '../../core/session-logger.js';
import type { SessionTransitionSink } from '../../core/session-storage.js';
import { SessionLimitError } from '../../core/session-storage-errors.js';
import { describeError } from '../../core/to-error.js';
import type { RedisConnection } from './redis-connection.js';
import type { ReaderStream, RedisEventReader } from './redis-event-reader.js';
import { NO_DEADLINE, sessionMember, type RedisSessionKeys } from './redis-keys.js';
import { RedisReplica } from './redis-replica.js';
import { createScript, destroyScript, releaseScript, sweepScript, touchManyScript, touchScript, type TransitionReply } from './redis-scripts.js';
import { RedisSweeper, SWEEP_BATCH } from './redis-sweeper.js';

/** Members per ZSCAN reply while seeding: one batch is well under a millisecond of work here. */
const SEED_BATCH = 1000;
/** Sessions per background touch script. */
const TOUCH_BATCH = 500;
const MAX_SEED_BACKOFF_MS = 1000;

/** What every key group of one storage shares. */
export interface KeyGroupSettings {
  readonly connection: RedisConnection;
  readonly instanceId: string;
  readonly lifetime: SessionLifetime;
  readonly streamMaxLength: number;
  /** Whether the group keeps a replica of its sessions for lookups. */
  readonly localReads: boolean;
  /** The most sessions one group may hold: maxSessions with one group, -1 (its quota key) with several, 0 for none. */
  readonly limit: number;
  /** Starts the storage's readers, which read every group's stream (once; see redis-readers). */
  readonly startReading: () => void;
  readonly logger: () => SessionLogger;
  /** Bounds a call by the storage's commandTimeout, describing its failure as the storage's typed error. */
  readonly bound: <T>(work: Promise<T>, operation: string) => Promise<T>;
}

interface PendingTouch {
  readonly member: string;
  readonly sessionId: SessionId;
  readonly authKeyId: AuthKeyId | undefined;
}

/**
 * One key group: a sorted set of sessions, the stream of their transitions and
 * its sequence, under one hash tag (one Cluster slot), with the reader that
 * announces that stream here, the replica it feeds, and the sweeper that
 * expires the group's sessions. The operations run on the group's keys only;
 * a storage may hold several groups. Calls are bounded by the storage.
 * Everything kept per stream is the group's own: its reader resumes and
 * detects gaps for this group's stream, and a gap rebuilds this group's
 * replica alone.
 */
export class RedisKeyGroup {
  /** This instance's copy of the group's live sessions (with localReads). */
  readonly replica: RedisReplica | undefined;
  /** The reader that reads this group's stream (maybe with other groups'), and the stream's index there. */
  private reader: RedisEventReader | undefined;
  private stream = 0;
  private readonly sweeper: RedisSweeper;
  /** Where announcements go once a subject attached; until then nobody listens. */
  private sink: SessionTransitionSink | undefined;
  private closed = false;
  /**
   * Set once the reader knows where the stream ends: the entries of a write
   * sent after that are read here, so its call waits for them; an entry
   * written before may fall before the reader's position. Once attached,
   * every call waits for this (the connection's gate).
   */
  private reading = false;
  /** Members with a background touch queued or in flight: at most one each. */
  private readonly touching = new Set<string>();
  private pendingTouches: PendingTouch[] = [];
  private touchFlushScheduled = false;
  private readonly logger: SessionLogger;
  /** Missed-events notices this group's reader raised, and when the last one was (ms). */
  eventsMissed = 0;
  lastEventsMissedAt: number | undefined;

  constructor(
    readonly keys: RedisSessionKeys,
    private readonly settings: KeyGroupSettings,
  ) {
    this.logger = { warn: (message) => settings.logger().warn(message), error: (message, stack) => settings.logger().error(message, stack) };
    this.sweeper = new RedisSweeper(() => this.sweepBatch(), settings.logger);
    if (settings.lifetime.idleTimeout !== undefined) this.sweeper.start(settings.lifetime.sweepInterval);
    if (settings.localReads) this.replica = new RedisReplica(settings.lifetime);
  }

  /** Announces the group's transitions to `sink` from now on. */
  attach(sink: SessionTransitionSink): void {
    this.sink = sink;
    this.settings.startReading();
    // Observers must hear every transition from now on: every call waits until the reader knows where the stream ends.
    this.settings.connection.waitAlsoFor(this.whenReading());
  }

  /** Resolves once the reader (if started) knows where the stream ends. */
  whenReading(): Promise<void> {
    return this.reader === undefined || this.reading ? Promise.resolve() : this.reader.ready;
  }

  /**
   * Starts reading, once: on attach, or with localReads on the first lookup
   * (the replica needs it even when nothing listens).
   */
  startReading(): void {
    if (this.reader === undefined && !this.closed) this.settings.startReading();
  }

  /** What a reader needs to read this group's stream: where its events and gaps go. */
  readerStream(): ReaderStream {
    const replica = this.replica;
    return {
      streamKey: this.keys.events,
      sink: {
        announce: (event) => this.sink?.announce(event),
        eventsMissed: (notice) => {
          this.eventsMissed++;
          this.lastEventsMissedAt = Date.now();
          // The replica may lack what the missed entries did: this group's part is rebuilt from its sorted set.
          if (replica !== undefined) this.seed(replica);
          this.sink?.eventsMissed(notice);
        },
        logger: this.logger,
      },
      apply: replica === undefined ? undefined : (event, member, deadline) => {
        if (event.type === 'created') replica.add(member, event.sessionId, event.authKeyId, deadline);
        else replica.remove(member, event.sessionId, event.authKeyId);
      },
    };
  }

  /** This group's stream is `stream` of `reader`, which has not started yet. */
  useReader(reader: RedisEventReader, stream: number): void {
    this.reader = reader;
    this.stream = stream;
    const replica = this.replica;
    if (replica !== undefined) {
      // Every entry from the reader's start position on is applied while the scan runs (see RedisReplica).
      const generation = replica.beginSeed();
      reader.ready.then(() => this.scan(replica, generation), () => undefined);
    }
    reader.ready.then(() => (this.reading = true), () => undefined);
  }

  /** How far behind its stream's end the group's reader is, in ms; undefined before it first read or when not reading. */
  readerLag(): number | undefined {
    return this.reader?.lag();
  }

  /**
   * Creates `member`, adding `grant` to the group's quota first; resolves
   * true if new, false if it existed, or 'quota' when the group's quota is
   * used up, once this instance has announced what the call did. With
   * `observers`, what the observers still have to settle is put there
   * instead of waited for (see {@link announced}).
   */
  async create(member: string, grant = 0, observers?: Promise<unknown>[]): Promise<boolean | 'quota'> {
    const announced = this.reading;
    const { lifetime, instanceId, streamMaxLength, limit } = this.settings;
    const now = lifetime.clock();
    const deadline = lifetime.idleTimeout === undefined ? NO_DEADLINE : now + lifetime.idleTimeout + lifetime.touchSlack;
    const reply = await this.settings.connection.run(createScript, this.keys, {
      member, origin: instanceId, now, deadline, limit, maxLength: streamMaxLength, grant,
    });
    if (reply.status === -2) {
      if (announced) await this.announced(reply.eventIds, observers);
      return 'quota';
    }
    return this.settle(reply, announced, observers);
  }

  /** Hands the group's unused quota back (after expiring up to one batch of lapsed sessions); resolves how much. */
  async release(): Promise<number> {
    const announced = this.reading;
    const { lifetime, instanceId, streamMaxLength } = this.settings;
    const reply = await this.settings.connection.run(releaseScript, this.keys, {
      now: lifetime.clock(), batch: SWEEP_BATCH, origin: instanceId, maxLength: streamMaxLength,
    });
    // The expiries it made are read here before the create that needed the quota goes on; their observers,
    // bounded by observerTimeout, are not that create's to wait for inside its commandTimeout.
    if (announced) await this.announced(reply.eventIds, []);
    return reply.released;
  }

  /** Destroys `member`; resolves true if it existed, once this instance has announced it (with `observers`, as in {@link create}). */
  async destroy(member: string, observers?: Promise<unknown>[]): Promise<boolean> {
    const announced = this.reading;
    const { lifetime, instanceId, streamMaxLength } = this.settings;
    const reply = await this.settings.connection.run(destroyScript, this.keys, {
      member, origin: instanceId, now: lifetime.clock(), maxLength: streamMaxLength,
    });
    return this.settle(reply, announced, observers);
  }

  /** The session's score, null when absent (sessions that never expire: no deadline to check). */
  score(member: string): Promise<number | null> {
    return this.settings.connection.client.zScore(this.keys.sessions, member);
  }

  /** Whether the session is live, pushing its deadline when due (with idleTimeout); the replica learns the deadline. */
  async touch(sessionId: SessionId, authKeyId: AuthKeyId | undefined): Promise<boolean> {
    const { lifetime } = this.settings;
    const now = lifetime.clock();
    const idleTimeout = lifetime.idleTimeout!;
    const deadline = await this.settings.connection.run(touchScript, this.keys, {
      member: sessionMember(sessionId, authKeyId), now, idleTimeout, deadline: now + idleTimeout + lifetime.touchSlack,
    });
    this.replica?.confirm(sessionId, authKeyId, deadline > 0 ? deadline : undefined);
    return deadline > 0;
  }

  /**
   * Queues a touch of a session the replica holds as live but due for one;
   * the lookup has answered already. At most one per session is queued or in
   * flight, and what the current synchronous run queued goes out as one script
   * (node-redis pipelines what is sent in one tick).
   */
  touchLater(sessionId: SessionId, authKeyId: AuthKeyId | undefined): void {
    const member = sessionMember(sessionId, authKeyId);
    if (this.touching.has(member)) return;
    this.touching.add(member);
    this.pendingTouches.push({ member, sessionId, authKeyId });
    if (this.touchFlushScheduled) return;
    this.touchFlushScheduled = true;
    // A microtask: the touches go out before any call made after this lookup, so Redis sees them in that order.
    queueMicrotask(() => this.flushTouches());
  }

  /** Live sessions of the group (those whose deadline has not passed). */
  count(): Promise<number> {
    return this.settings.connection.client.zCount(this.keys.sessions, `(${this.settings.lifetime.clock()}`, '+inf');
  }

  /** A command on the group's keys that changes nothing, for readiness checks. */
  ping(): Promise<unknown> {
    return this.settings.connection.client.zCount(this.keys.sessions, '-inf', '-inf');
  }

  /** Expires every lapsed session of the group now; resolves how many, once announced here. */
  expireAll(): Promise<number> {
    return this.sweeper.expireAll();
  }

  close(): void {
    this.closed = true;
    this.sweeper.stop();
    this.replica?.clear();
    for (const touch of this.pendingTouches) this.touching.delete(touch.member);
    this.pendingTouches = [];
  }

  /** Starts a rebuild of the replica: a new seed, which stops any scan still running. */
  private seed(replica: RedisReplica): void {
    if (this.closed) return;
    const generation = replica.beginSeed();
    void this.scan(replica, generation);
  }

  /** Scans the sorted set in batches into the replica, retrying (from the same cursor) while Redis is away. */
  private async scan(replica: RedisReplica, generation: number): Promise<void> {
    const { connection, bound } = this.settings;
    let cursor = '0';
    let failures = 0;
    while (!this.closed && replica.generation === generation) {
      try {
        const reply = await bound(connection.afterReady(() => connection.client.zScan(this.keys.sessions, cursor, { COUNT: SEED_BATCH })), 'seeding the replica');
        if (failures > 0) this.logger.warn(`Session replica of ${this.keys.sessions} resumed seeding`);
        failures = 0;
        replica.seedBatch(generation, reply.members);
        cursor = String(reply.cursor);
        if (cursor === '0') {
          replica.endSeed(generation);
          return;
        }
      } catch (error) {
        // Lookups go to Redis until the seed completes; it retries from the same cursor.
        // A seed cut short by close() is no failure to report.
        if (this.closed) return;
        if (failures === 0) this.logger.warn(`Seeding the session replica of ${this.keys.sessions} failed (${describeError(error)}); lookups ask Redis until it completes`);
        failures++;
        await delay(Math.min(MAX_SEED_BACKOFF_MS, 25 * 2 ** failures));
      }
    }
  }

  private flushTouches(): void {
    this.touchFlushScheduled = false;
    const queued = this.pendingTouches;
    this.pendingTouches = [];
    for (let at = 0; at < queued.length; at += TOUCH_BATCH) this.sendTouches(queued.slice(at, at + TOUCH_BATCH));
  }

  private sendTouches(batch: PendingTouch[]): void {
    const { connection, lifetime, bound } = this.settings;
    const now = lifetime.clock();
    const idleTimeout = lifetime.idleTimeout!;
    const members = batch.map((touch) => touch.member);
    const done = (): void => {
      for (const member of members) this.touching.delete(member);
    };
    bound(connection.run(touchManyScript, this.keys, { members, now, idleTimeout, deadline: now + idleTimeout + lifetime.touchSlack }), 'touching sessions').then(
      (deadlines) => {
        done();
        if (this.closed) return;
        batch.forEach((touch, i) => this.replica?.confirm(touch.sessionId, touch.authKeyId, deadlines[i]! > 0 ? deadlines[i] : undefined));
      },
      // Not confirmed: the replica keeps the deadline it had, and once that has passed, a lookup asks Redis.
      done,
    );
  }

  /** Expires up to one batch of lapsed sessions; resolves how many, once announced here. */
  private async sweepBatch(): Promise<number> {
    const { lifetime, instanceId, streamMaxLength, connection } = this.settings;
    // The observers' settling is waited for after the bound, as for a call (observerTimeout bounds them).
    const observers: Promise<unknown>[] = [];
    const ids = await this.settings.bound(connection.afterReady(async () => {
      const announced = this.reading;
      const expired = await connection.run(sweepScript, this.keys, {
        now: lifetime.clock(), batch: SWEEP_BATCH, origin: instanceId, maxLength: streamMaxLength,
      });
      return announced ? this.announced(expired, observers).then(() => expired) : expired;
    }), 'expireIdleSessions');
    if (observers.length > 0) await Promise.all(observers);
    return ids.length;
  }

  /** Maps a transition's reply to the call's result, after this instance has announced its events. */
  private async settle(reply: TransitionReply, announced: boolean, observers: Promise<unknown>[] | undefined): Promise<boolean> {
    if (announced) await this.announced(reply.eventIds, observers);
    if (reply.status === -1) throw new SessionLimitError(this.settings.lifetime.maxSessions!);
    return reply.status === 1;
  }

  /**
   * Waits until this instance's reader has read and announced the entries
   * this instance just wrote, and, unless `observers` is given, until the
   * observers have settled them. A caller bounded by commandTimeout passes
   * `observers` and waits for them after its bound: the change is made by
   * then, and the observers have a bound of their own (observerTimeout).
   */
  private async announced(eventIds: readonly string[], observers?: Promise<unknown>[]): Promise<void> {
    const settling = observers ?? [];
    for (const id of eventIds) {
      const announced = await this.reader!.announced(this.stream, id);
      if (announced.settling !== undefined) settling.push(announced.settling);
    }
    if (observers === undefined && settling.length > 0) await Promise.all(settling);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
