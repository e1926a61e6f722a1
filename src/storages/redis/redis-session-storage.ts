import { checkIds, type AuthKeyId, type SessionId } from '../../core/session-id.js';
import { markChecksIds, type SessionStorage, type SessionStorageHealthDetails, type SessionTransitionSink } from '../../core/session-storage.js';
import { Deadlines } from './deadlines.js';
import { ForwardingLogger } from './forwarding-logger.js';
import { localNow } from './redis-clock.js';
import { RedisConnection } from './redis-connection.js';
import { RedisEventReaders } from './redis-event-reader.js';
import { bounded, describeCreateFailure, describeDestroyFailure } from './redis-failures.js';
import { RedisKeyGroup } from './redis-key-group.js';
import { groupIndex } from './redis-key-routing.js';
import { sessionMember, type RedisSessionKeys } from './redis-keys.js';
import { checkKeyLayout, LAYOUT } from './redis-layout-check.js';
import { RedisQuotaHealer } from './redis-quota-healer.js';
import { RedisQuotaPool } from './redis-quota-pool.js';
import { RedisSessionQuota } from './redis-session-quota.js';
import { resolveRedisOptions, type RedisSessionStorageOptions } from './redis-storage-options.js';
import { changedOnceSettled, type Transition } from './redis-transition.js';
import { RedisVerifier } from './redis-verifier.js';
import { settlesWithin } from './settles-within.js';

/**
 * Sessions in Redis (standalone or Cluster), shared by every application
 * instance that uses the same `keyPrefix`. Each transition is recorded with
 * its event in one script, and every instance reads the event stream, so each
 * instance's observers receive every transition exactly once, in order per
 * session, whichever instance made it.
 *
 * Sessions are spread over `shards` key groups (see redis-key-routing), each
 * with its own sorted set, stream and sequence under its own hash tag: a call
 * checks the ids, picks the session's group, and goes to its read path or
 * write path (see docs/architecture.md for the walk of each).
 */
export class RedisSessionStorage implements SessionStorage {
  static {
    // Its hasSession checks ids itself, so SessionSubject forwards lookups without checking them again.
    markChecksIds(this.prototype.hasSession);
  }

  readonly instanceId: string;
  private readonly connection: RedisConnection;
  private readonly readers: RedisEventReaders;
  private readonly groups: readonly RedisKeyGroup[];
  private readonly shards: number;
  private readonly quota: RedisSessionQuota | undefined;
  private readonly verifier: RedisVerifier;
  /** With a quota: brings back what faults took of it. */
  private readonly healer: RedisQuotaHealer | undefined;
  private readonly deadlines: Deadlines;
  private readonly logger: ForwardingLogger;
  private readonly explicitLogger: boolean;
  private readonly clock: () => number;
  /** Shared with the layout check, which stops retrying once closed. */
  private readonly state = { closed: false };
  private attached = false;
  private closing: Promise<void> | undefined;

  constructor(options: RedisSessionStorageOptions) {
    const resolved = resolveRedisOptions(options);
    const { lifetime, shards } = resolved;
    this.instanceId = resolved.instanceId;
    this.logger = new ForwardingLogger(resolved.logger ?? console);
    this.explicitLogger = resolved.logger !== undefined;
    this.clock = lifetime.clock;
    this.shards = shards;
    this.deadlines = new Deadlines(resolved.commandTimeout);
    this.connection = new RedisConnection(resolved.source, resolved.commandTimeout, this.logger);
    const maxSessions = lifetime.maxSessions;
    // With one group the limit is each caller's own, as before layouts were recorded; with several it is the prefix's.
    const wanted = { layout: LAYOUT, shards, maxSessions: shards === 1 ? 0 : maxSessions ?? 0 };
    // Not afterReady: a first connection that fails would fail the check, and so every later call, for good.
    const layoutChecked = this.connection.afterConnected(() => checkKeyLayout(this.connection, this.deadlines, resolved.layout, wanted, this.logger, this.state));
    this.connection.waitAlsoFor(layoutChecked);
    this.readers = new RedisEventReaders(this.connection, {
      instanceId: resolved.instanceId,
      commandTimeout: resolved.commandTimeout,
      streamMaxLength: resolved.streamMaxLength,
      logger: this.logger,
      layoutChecked,
      maxStaleness: resolved.maxStaleness,
    });
    const parts = { connection: this.connection, readers: this.readers, deadlines: this.deadlines, logger: this.logger };
    const settings = {
      instanceId: resolved.instanceId,
      lifetime,
      streamMaxLength: resolved.streamMaxLength,
      localReads: resolved.localReads,
      // One group checks maxSessions in its script; several share it through quotas.
      maxSessions: shards === 1 ? maxSessions : undefined,
      commandTimeout: resolved.commandTimeout,
    };
    this.groups = resolved.groups.map((keys) => new RedisKeyGroup(keys, parts, settings));
    if (maxSessions !== undefined && shards > 1) {
      const pool = new RedisQuotaPool(this.connection, resolved.layout);
      const healerSettings = { maxSessions, shards, commandTimeout: resolved.commandTimeout };
      this.healer = new RedisQuotaHealer(pool, this.connection, this.deadlines, resolved.groups, healerSettings, this.logger);
      const writes = this.groups.map((group) => group.write);
      this.quota = new RedisSessionQuota(pool, this.healer, this.deadlines, writes, maxSessions, resolved.commandTimeout, () => this.countNow());
      this.healer.start();
    }
    this.verifier = new RedisVerifier(this.groups, { keys: resolved.layout, wanted }, this.connection, this.deadlines, this.logger);
    layoutChecked.then(() => {
      if (!this.state.closed) this.verifier.start(resolved.verifyInterval);
    }, () => undefined);
    void this.verifier.refused.then((error) => this.stopServing(error));
  }

  /** The keys of the first key group (with `shards: 1`, of the only one), for tools and tests. */
  get redisKeys(): RedisSessionKeys {
    return this.groups[0]!.keys;
  }

  /** Every key group's keys, in group order. */
  get keyGroups(): readonly RedisSessionKeys[] {
    return this.groups.map((group) => group.keys);
  }

  /** The keys of the group that holds a session (the ids are not checked). */
  keysOf(sessionId: SessionId, authKeyId?: AuthKeyId): RedisSessionKeys {
    return this.groupOf(sessionId, authKeyId).keys;
  }

  attach(sink: SessionTransitionSink): void {
    if (this.attached) throw new TypeError('This RedisSessionStorage already announces to a SessionSubject; give each subject its own storage');
    this.attached = true;
    if (!this.explicitLogger) this.logger.target = sink.logger;
    for (const group of this.groups) group.attach(sink);
    this.readers.start();
    // Observers must hear every transition from now on: every call waits until the readers know where the streams end.
    this.connection.waitAlsoFor(Promise.all(this.groups.map((group) => group.cursor.ready)));
  }

  createSession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
    const invalid = checkIds(sessionId, authKeyId);
    if (invalid) return Promise.reject(invalid);
    const member = sessionMember(sessionId, authKeyId);
    const index = this.shards === 1 ? 0 : groupIndex(sessionId, authKeyId, this.shards);
    // The caller is told of a timeout no sooner than this; the scripts refuse to run past it (fencing).
    const deadline = localNow() + this.deadlines.timeout;
    const connection = this.connection;
    // Once ready, no closure: this runs once per transition.
    const created = connection.waiting
      ? connection.afterReady(() => this.createIn(index, member, sessionId, authKeyId, deadline))
      : this.createIn(index, member, sessionId, authKeyId, deadline);
    return this.deadlines.bound(created, 'createSession', describeCreateFailure, changedOnceSettled);
  }

  hasSession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
    const invalid = checkIds(sessionId, authKeyId);
    if (invalid) return Promise.reject(invalid);
    return this.groupOf(sessionId, authKeyId).read.has(sessionId, authKeyId);
  }

  destroySession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
    const invalid = checkIds(sessionId, authKeyId);
    if (invalid) return Promise.reject(invalid);
    const member = sessionMember(sessionId, authKeyId);
    const group = this.groupOf(sessionId, authKeyId);
    const deadline = localNow() + this.deadlines.timeout;
    const connection = this.connection;
    const write = group.write;
    const work = connection.waiting ? connection.afterReady(() => write.destroy(member, sessionId, authKeyId, deadline)) : write.destroy(member, sessionId, authKeyId, deadline);
    const destroyed = this.deadlines.bound(work, 'destroySession', describeDestroyFailure, changedOnceSettled);
    // It may have happened before it failed: the replica must not go on answering that the session lives.
    destroyed.catch(() => group.read.forget(member, sessionId, authKeyId));
    return destroyed;
  }

  /** Live sessions over all scopes (those whose deadline has not passed): one O(log n) count per key group, summed. */
  count(): Promise<number> {
    return bounded(this.deadlines, this.connection.afterReady(() => this.countNow()), 'count');
  }

  /**
   * Expires every session whose idle deadline has passed, now, and resolves
   * with how many expired once their events have been announced here. The
   * storage does this by itself every `sweepInterval`; tests call it with a
   * manual clock.
   */
  async expireIdleSessions(): Promise<number> {
    return sum(await Promise.all(this.groups.map((group) => group.expireAll())));
  }

  /**
   * Resolves once the storage is connected and, when attached, every group's
   * reader knows where its stream ends, so every later transition reaches this
   * instance. Rejects with `SessionStorageTimeoutError` after `commandTimeout`,
   * and with `RedisKeyLayoutError` when the data in Redis is laid out
   * differently (another `shards`; see docs/cluster.md on changing it).
   */
  ready(): Promise<void> {
    return bounded(this.deadlines, this.connection.afterReady(async () => {
      if (this.readers.started) await Promise.all(this.groups.map((group) => group.cursor.ready));
    }), 'ready');
  }

  /**
   * With localReads: resolves once the replica is seeded and answers lookups
   * of live sessions here (it starts on attach or on the first lookup), or
   * rejects with `SessionStorageTimeoutError` after `commandTimeout`. Resolves
   * at once without localReads. For tests and readiness checks: lookups are
   * right before, they just ask Redis.
   */
  localReadsReady(): Promise<void> {
    return bounded(this.deadlines, Promise.all(this.groups.map((group) => group.read.whenLocal())).then(() => undefined), 'localReadsReady');
  }

  /** Resolves once Redis answers a command on this storage's keys, for readiness checks; rejects with `SessionStorageUnavailableError` otherwise. */
  async ping(): Promise<void> {
    // A count of nothing: a command on each group's keys that changes nothing.
    await bounded(this.deadlines, this.connection.afterReady(() => Promise.all(this.groups.map((group) => this.connection.client.zCount(group.keys.sessions, '-inf', '-inf')))), 'ping');
  }

  /**
   * For health checks: whether the connection is up, whether every key
   * group's replica answers lookups (seeded and within its maxStaleness lease;
   * null without localReads), how far behind its stream's end the furthest
   * behind reader is (seconds; null before any first read), and the
   * missed-events notices the readers raised since start.
   */
  healthDetails(): SessionStorageHealthDetails {
    let last: number | undefined;
    let eventsMissed = 0;
    for (const group of this.groups) {
      if (group.lastEventsMissedAt !== undefined) last = Math.max(last ?? 0, group.lastEventsMissedAt);
      eventsMissed += group.eventsMissedCount;
    }
    const lag = this.readers.lag();
    let withinLease: boolean | null = null;
    for (const group of this.groups) {
      const answers = group.read.answersLocally;
      if (answers !== undefined) withinLease = (withinLease ?? true) && answers;
    }
    return {
      // Open but stalled (SIGSTOP, a partition that drops nothing) counts as not connected once a call outlived its bound.
      connected: this.connection.isReady && this.deadlines.answering,
      localReadsWithinLease: withinLease,
      readerLagSeconds: lag === undefined ? null : lag / 1000,
      eventsMissed,
      lastEventsMissedAt: last === undefined ? null : new Date(last).toISOString(),
    };
  }

  /** Stops the reader and the sweeps and closes the connections the storage opened; a client given to it stays open. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  /** The layout changed under this instance: every call fails with `error`, and the replicas stop answering. */
  private stopServing(error: Error): void {
    this.connection.failForGood(error);
    // Nor may it touch the prefix's shared limit any more.
    this.healer?.stop();
    this.readers.close();
    for (const group of this.groups) group.read.close();
  }

  private async shutDown(): Promise<void> {
    this.state.closed = true;
    this.verifier.stop();
    // A call that just timed out says Redis is not answering: waiting for replies on closing would only add another commandTimeout.
    const grace = this.deadlines.timedOutRecently ? 0 : this.deadlines.timeout;
    for (const group of this.groups) group.close();
    this.healer?.stop();
    const readersClosed = this.readers.close();
    this.deadlines.close();
    // A reader's connect in flight is bounded by its connect timeout, which an application's client may set high.
    await Promise.all([this.connection.close(grace), settlesWithin(readersClosed, this.deadlines.timeout)]);
  }

  /** Creates in group `index`, through the shared limit when there is one. */
  private createIn(index: number, member: string, sessionId: SessionId, authKeyId: AuthKeyId | undefined, deadline: number): Promise<Transition<boolean>> {
    const quota = this.quota;
    return quota === undefined ? this.groups[index]!.write.create(member, sessionId, authKeyId, deadline) : quota.create(index, member, sessionId, authKeyId, deadline);
  }

  private async countNow(): Promise<number> {
    const now = this.clock();
    return sum(await Promise.all(this.groups.map((group) => this.connection.client.zCount(group.keys.sessions, `(${now}`, '+inf'))));
  }

  private groupOf(sessionId: SessionId, authKeyId: AuthKeyId | undefined): RedisKeyGroup {
    return this.shards === 1 ? this.groups[0]! : this.groups[groupIndex(sessionId, authKeyId, this.shards)]!;
  }
}

function sum(counts: readonly number[]): number {
  return counts.reduce((total, count) => total + count, 0);
}
