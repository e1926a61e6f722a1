import { checkIds, type AuthKeyId, type SessionId } from '../../core/session-id.js';
import type { SessionLogger } from '../../core/session-logger.js';
import { markChecksIds, type SessionStorage, type SessionStorageHealthDetails, type SessionTransitionSink } from '../../core/session-storage.js';
import { SessionLimitError, SessionStorageUnavailableError } from '../../core/session-storage-errors.js';
import { Deadlines } from './deadlines.js';
import { describeError } from '../../core/to-error.js';
import { RedisConnection } from './redis-connection.js';
import type { RedisEventReader } from './redis-event-reader.js';
import { RedisKeyGroup } from './redis-key-group.js';
import { RedisKeyLayoutError } from './redis-key-layout-error.js';
import { groupIndex } from './redis-key-routing.js';
import { REPLICA_LIVE, REPLICA_TOUCH_DUE } from './redis-replica.js';
import { sessionMember, type RedisLayoutKeys, type RedisSessionKeys } from './redis-keys.js';
import { layoutScript, type RecordedLayout } from './redis-scripts.js';
import { startReaders } from './redis-readers.js';
import { RedisSessionQuota } from './redis-session-quota.js';
import { resolveRedisOptions, type RedisSessionStorageOptions } from './redis-storage-options.js';

/** The name of the key layout this version writes; a record naming another is refused. */
const LAYOUT = 'groups-v1';
const MAX_LAYOUT_BACKOFF_MS = 1000;

/**
 * Sessions in Redis (standalone or Cluster), shared by every application
 * instance that uses the same `keyPrefix`. Each transition is recorded with
 * its event in one script, and every instance reads the event stream, so each
 * instance's observers receive every transition exactly once, in order per
 * session, whichever instance made it.
 *
 * Sessions are spread over `shards` key groups (see redis-key-routing), each
 * with its own sorted set, stream and sequence under its own hash tag: every
 * transition is one script inside its group, and each group's stream has a
 * cursor of its own, which resumes and detects gaps for that group alone (one
 * reader reads every group's stream on standalone, one per group on a
 * Cluster: see redis-readers).
 */
export class RedisSessionStorage implements SessionStorage {
  static {
    // Its hasSession checks ids itself, so SessionSubject forwards lookups without checking them again.
    markChecksIds(this.prototype.hasSession);
  }

  readonly instanceId: string;
  private readonly streamMaxLength: number;
  private readonly connection: RedisConnection;
  private readonly groups: readonly RedisKeyGroup[];
  private readonly shards: number;
  private readonly quota: RedisSessionQuota | undefined;
  private readonly layoutKeys: RedisLayoutKeys;
  private readonly wanted: RecordedLayout;
  /** Settles once the layout in Redis is known to match; rejects for good on a mismatch. */
  private readonly layoutChecked: Promise<void>;
  /** Started on attach, or with localReads on the first lookup. */
  private readers: RedisEventReader[] | undefined;
  private readonly expiring: boolean;
  private readonly deadlines: Deadlines;
  private logger: SessionLogger;
  private readonly explicitLogger: boolean;
  private attached = false;
  private closing: Promise<void> | undefined;

  constructor(options: RedisSessionStorageOptions) {
    const resolved = resolveRedisOptions(options);
    this.instanceId = resolved.instanceId;
    this.streamMaxLength = resolved.streamMaxLength;
    this.logger = resolved.logger ?? console;
    this.explicitLogger = resolved.logger !== undefined;
    this.expiring = resolved.lifetime.idleTimeout !== undefined;
    this.deadlines = new Deadlines(resolved.commandTimeout);
    this.connection = new RedisConnection(resolved.source, resolved.commandTimeout, () => this.logger);
    this.shards = resolved.shards;
    this.layoutKeys = resolved.layout;
    const maxSessions = resolved.lifetime.maxSessions;
    // With one group the limit is each caller's own, as before layouts were recorded; with several it is the prefix's.
    this.wanted = { layout: LAYOUT, shards: this.shards, maxSessions: this.shards === 1 ? 0 : maxSessions ?? 0 };
    // Not afterReady: a first connection that fails would fail the check, and so every later call, for good.
    this.layoutChecked = this.connection.afterConnected(() => this.checkLayout());
    this.connection.waitAlsoFor(this.layoutChecked);
    const settings = {
      connection: this.connection,
      instanceId: resolved.instanceId,
      lifetime: resolved.lifetime,
      streamMaxLength: resolved.streamMaxLength,
      localReads: resolved.localReads,
      // One group checks maxSessions itself; several share it through quotas.
      limit: maxSessions === undefined ? 0 : this.shards === 1 ? maxSessions : -1,
      startReading: () => this.startReading(),
      logger: () => this.logger,
      bound: <T>(work: Promise<T>, operation: string) => this.bounded(work, operation),
    };
    this.groups = resolved.groups.map((keys) => new RedisKeyGroup(keys, settings));
    this.quota = maxSessions !== undefined && this.shards > 1 ? new RedisSessionQuota(this.connection, this.layoutKeys, this.groups, maxSessions) : undefined;
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
    if (!this.explicitLogger) this.logger = sink.logger;
    for (const group of this.groups) group.attach(sink);
  }

  createSession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
    const invalid = checkIds(sessionId, authKeyId);
    if (invalid) return Promise.reject(invalid);
    const member = sessionMember(sessionId, authKeyId);
    const group = this.groupOf(sessionId, authKeyId);
    const quota = this.quota;
    const observers: Promise<unknown>[] = [];
    const create = quota === undefined ? () => group.create(member, 0, observers) as Promise<boolean> : () => quota.create(group, member, observers);
    return afterObservers(this.bounded(this.connection.afterReady(create), 'createSession'), observers);
  }

  hasSession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
    const invalid = checkIds(sessionId, authKeyId);
    if (invalid) return Promise.reject(invalid);
    const group = this.groupOf(sessionId, authKeyId);
    const replica = group.replica;
    if (replica !== undefined) {
      if (replica.live) {
        // The hot path: a session the replica holds as live costs no Redis command.
        const answer = replica.lookup(sessionId, authKeyId);
        if (answer === REPLICA_LIVE) return RESOLVED_TRUE;
        if (answer === REPLICA_TOUCH_DUE) {
          group.touchLater(sessionId, authKeyId);
          return RESOLVED_TRUE;
        }
        // Not held, or its known deadline has passed: Redis decides.
      } else {
        // A storage that only writes needs no reader; one that is asked about sessions starts its replica.
        group.startReading();
      }
    }
    if (this.expiring) {
      return this.deadlines.bound(this.connection.afterReady(() => group.touch(sessionId, authKeyId)), 'hasSession', this.describeHasFailure);
    }
    const member = sessionMember(sessionId, authKeyId);
    // Once ready, no closure and no promise beyond the command's and the bound's.
    let score: Promise<number | null>;
    if (!this.connection.waiting) {
      try {
        score = group.score(member);
      } catch (error) {
        // node-redis throws synchronously on a closed client.
        score = Promise.reject(error);
      }
    } else {
      score = this.connection.afterReady(() => group.score(member));
    }
    return this.deadlines.bound(score, 'hasSession', this.describeHasFailure, isPresent);
  }

  destroySession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
    const invalid = checkIds(sessionId, authKeyId);
    if (invalid) return Promise.reject(invalid);
    const member = sessionMember(sessionId, authKeyId);
    const group = this.groupOf(sessionId, authKeyId);
    const observers: Promise<unknown>[] = [];
    return afterObservers(this.bounded(this.connection.afterReady(() => group.destroy(member, observers)), 'destroySession'), observers);
  }

  /** Live sessions over all scopes (those whose deadline has not passed): one O(log n) count per key group, summed. */
  count(): Promise<number> {
    return this.bounded(this.connection.afterReady(async () => sum(await Promise.all(this.groups.map((group) => group.count())))), 'count');
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
   * differently (another `shards`; see the README on changing it).
   */
  ready(): Promise<void> {
    return this.bounded(this.connection.afterReady(async () => {
      await Promise.all(this.groups.map((group) => group.whenReading()));
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
    if (this.groups[0]!.replica === undefined) return Promise.resolve();
    return this.bounded(Promise.all(this.groups.map((group) => {
      group.startReading();
      const replica = group.replica!;
      return replica.live ? undefined : replica.seeded;
    })).then(() => undefined), 'localReadsReady');
  }

  /** Resolves once Redis answers a command on this storage's keys, for readiness checks; rejects with `SessionStorageUnavailableError` otherwise. */
  async ping(): Promise<void> {
    await this.bounded(this.connection.afterReady(() => Promise.all(this.groups.map((group) => group.ping()))), 'ping');
  }

  /**
   * For health checks: whether the connection is up, how far behind its
   * stream's end the furthest behind group's reader is (seconds; null before
   * any first read), and the missed-events notices the readers raised since start.
   */
  healthDetails(): SessionStorageHealthDetails {
    let lag: number | undefined;
    let last: number | undefined;
    let eventsMissed = 0;
    for (const group of this.groups) {
      const groupLag = group.readerLag();
      if (groupLag !== undefined) lag = Math.max(lag ?? 0, groupLag);
      if (group.lastEventsMissedAt !== undefined) last = Math.max(last ?? 0, group.lastEventsMissedAt);
      eventsMissed += group.eventsMissed;
    }
    return {
      connected: this.connection.isReady,
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

  private async shutDown(): Promise<void> {
    // A call that just timed out says Redis is not answering: waiting for replies on closing would only add another commandTimeout.
    const grace = this.deadlines.timedOutRecently ? 0 : this.deadlines.timeout;
    for (const group of this.groups) group.close();
    for (const reader of this.readers ?? []) reader.close();
    this.deadlines.close();
    await this.connection.close(grace);
  }

  /** Starts the readers of every group, once (see redis-readers). */
  private startReading(): void {
    if (this.readers !== undefined || this.closing !== undefined) return;
    this.readers = startReaders(this.groups, {
      connection: this.connection,
      instanceId: this.instanceId,
      commandTimeout: this.deadlines.timeout,
      streamMaxLength: this.streamMaxLength,
      logger: { warn: (message) => this.logger.warn(message), error: (message, stack) => this.logger.error(message, stack) },
      layoutChecked: this.layoutChecked,
      closed: () => this.closing !== undefined,
    });
  }

  private groupOf(sessionId: SessionId, authKeyId: AuthKeyId | undefined): RedisKeyGroup {
    return this.shards === 1 ? this.groups[0]! : this.groups[groupIndex(sessionId, authKeyId, this.shards)]!;
  }

  /**
   * Records the layout if none is, else checks it against this storage's,
   * retrying (each try bounded, backing off) while Redis cannot be reached:
   * calls wait for it within their own deadlines.
   */
  private async checkLayout(): Promise<void> {
    let recorded: RecordedLayout | 'single-unrecorded';
    for (let failures = 0; ; failures++) {
      try {
        recorded = await this.bounded(this.connection.run(layoutScript, this.layoutKeys, this.wanted), 'ready');
        break;
      } catch (error) {
        if (this.closing !== undefined) throw error;
        // Calls wait for the check, within their own deadlines: say once why they do.
        if (failures === 0) this.logger.warn(`Checking the key layout in Redis failed (${describeError(error)}); calls wait until it succeeds, retrying`);
        await delay(Math.min(MAX_LAYOUT_BACKOFF_MS, 25 * 2 ** failures));
      }
    }
    const wanted = this.wanted;
    if (recorded !== 'single-unrecorded' && recorded.layout === wanted.layout && recorded.shards === wanted.shards && recorded.maxSessions === wanted.maxSessions) return;
    const prefix = this.layoutKeys.layout.slice(1, this.layoutKeys.layout.lastIndexOf('}'));
    throw new RedisKeyLayoutError(layoutMismatch(this.layoutKeys, wanted, recorded), prefix, wanted, recorded);
  }

  private readonly describeHasFailure = (error: unknown): Error => this.describeFailure(error, 'hasSession');

  private bounded<T>(work: Promise<T>, operation: string): Promise<T> {
    return this.deadlines.bound(work, operation, (error) => this.describeFailure(error, operation));
  }

  private describeFailure(error: unknown, operation: string): Error {
    if (error instanceof SessionLimitError || error instanceof SessionStorageUnavailableError || error instanceof RedisKeyLayoutError) return error;
    return new SessionStorageUnavailableError(`Redis could not complete ${operation}: ${describeError(error)}`, { cause: error });
  }
}

// Settled promises shared by every lookup the replica answers: that path allocates nothing.
const RESOLVED_TRUE = Promise.resolve(true);

/**
 * The call's result once this instance's observers have settled its events.
 * Only the Redis part is bounded by commandTimeout: once Redis has made the
 * change the call reports it, and the observers are bounded by the subject's
 * observerTimeout, which may be longer.
 */
async function afterObservers<T>(done: Promise<T>, observers: readonly Promise<unknown>[]): Promise<T> {
  const value = await done;
  if (observers.length > 0) await Promise.all(observers);
  return value;
}

function isPresent(score: number | null): boolean {
  return score !== null;
}

function sum(counts: readonly number[]): number {
  return counts.reduce((total, count) => total + count, 0);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function layoutMismatch(keys: RedisLayoutKeys, wanted: RecordedLayout, recorded: RecordedLayout | 'single-unrecorded'): string {
  const start = 'RedisSessionStorage refuses to use data laid out differently from its options';
  if (recorded === 'single-unrecorded') {
    return `${start}: ${keys.single.sessions} and ${keys.single.events} hold data in the one-group layout (shards: 1, written by a version `
      + `that did not record its layout), but this storage has shards: ${wanted.shards}. Start it with shards: 1, or migrate (README, "Changing shards").`;
  }
  if (recorded.layout !== wanted.layout) return `${start}: ${keys.layout} records layout ${JSON.stringify(recorded.layout)}, this version writes ${JSON.stringify(wanted.layout)}.`;
  if (recorded.shards !== wanted.shards) {
    return `${start}: ${keys.layout} records shards: ${recorded.shards}, this storage has shards: ${wanted.shards}. `
      + 'Every instance of a key prefix must use the same shards; to change it, migrate (README, "Changing shards").';
  }
  const limit = (value: number) => (value === 0 ? 'no maxSessions' : `maxSessions: ${value}`);
  return `${start}: ${keys.layout} records ${limit(recorded.maxSessions)} for its ${recorded.shards} key groups, this storage has ${limit(wanted.maxSessions)}. `
    + 'With shards > 1 the limit is the prefix\'s, shared by every instance; to change it, see the README ("Changing maxSessions").';
}
