import { checkIds, type AuthKeyId, type SessionId } from '../../core/session-id.js';
import type { SessionLogger } from '../../core/session-logger.js';
import { markChecksIds, type SessionStorage, type SessionStorageHealthDetails, type SessionTransitionSink } from '../../core/session-storage.js';
import { SessionLimitError, SessionStorageUnavailableError } from '../../core/session-storage-errors.js';
import { Deadlines } from './deadlines.js';
import { describeError } from '../../core/to-error.js';
import { RedisConnection } from './redis-connection.js';
import { RedisKeyGroup } from './redis-key-group.js';
import { REPLICA_LIVE, REPLICA_TOUCH_DUE } from './redis-replica.js';
import { sessionMember, type RedisSessionKeys } from './redis-keys.js';
import { resolveRedisOptions, type RedisSessionStorageOptions } from './redis-storage-options.js';

/**
 * Sessions in Redis (standalone or Cluster), shared by every application
 * instance that uses the same `keyPrefix`. Each transition is recorded with
 * its event in one script, and every instance reads the event stream, so each
 * instance's observers receive every transition exactly once, in order per
 * session, whichever instance made it.
 */
export class RedisSessionStorage implements SessionStorage {
  static {
    // Its hasSession checks ids itself, so SessionSubject forwards lookups without checking them again.
    markChecksIds(this.prototype.hasSession);
  }

  readonly instanceId: string;
  private readonly connection: RedisConnection;
  private readonly group: RedisKeyGroup;
  private readonly expiring: boolean;
  private readonly deadlines: Deadlines;
  private logger: SessionLogger;
  private readonly explicitLogger: boolean;
  private attached = false;
  private closing: Promise<void> | undefined;

  constructor(options: RedisSessionStorageOptions) {
    const resolved = resolveRedisOptions(options);
    this.instanceId = resolved.instanceId;
    this.logger = resolved.logger ?? console;
    this.explicitLogger = resolved.logger !== undefined;
    this.expiring = resolved.lifetime.idleTimeout !== undefined;
    this.deadlines = new Deadlines(resolved.commandTimeout);
    this.connection = new RedisConnection(resolved.source, resolved.commandTimeout, () => this.logger);
    this.group = new RedisKeyGroup(resolved.keys, {
      connection: this.connection,
      instanceId: resolved.instanceId,
      lifetime: resolved.lifetime,
      streamMaxLength: resolved.streamMaxLength,
      commandTimeout: resolved.commandTimeout,
      localReads: resolved.localReads,
      logger: () => this.logger,
      bound: (work, operation) => this.bounded(work, operation),
    });
  }

  /** The key prefix's sorted set and stream, for tools and tests. */
  get redisKeys(): RedisSessionKeys {
    return this.group.keys;
  }

  attach(sink: SessionTransitionSink): void {
    if (this.attached) throw new TypeError('This RedisSessionStorage already announces to a SessionSubject; give each subject its own storage');
    this.attached = true;
    if (!this.explicitLogger) this.logger = sink.logger;
    this.group.attach(sink);
  }

  createSession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
    const invalid = checkIds(sessionId, authKeyId);
    if (invalid) return Promise.reject(invalid);
    const member = sessionMember(sessionId, authKeyId);
    const group = this.group;
    return this.bounded(this.connection.afterReady(() => group.create(member)), 'createSession');
  }

  hasSession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
    const invalid = checkIds(sessionId, authKeyId);
    if (invalid) return Promise.reject(invalid);
    const group = this.group;
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
    const group = this.group;
    return this.bounded(this.connection.afterReady(() => group.destroy(member)), 'destroySession');
  }

  /** Live sessions over all scopes (those whose deadline has not passed). O(log n) in Redis. */
  count(): Promise<number> {
    return this.bounded(this.connection.afterReady(() => this.group.count()), 'count');
  }

  /**
   * Expires every session whose idle deadline has passed, now, and resolves
   * with how many expired once their events have been announced here. The
   * storage does this by itself every `sweepInterval`; tests call it with a
   * manual clock.
   */
  expireIdleSessions(): Promise<number> {
    return this.group.expireAll();
  }

  /**
   * Resolves once the storage is connected and, when attached, its reader knows
   * where the stream ends, so every later transition reaches this instance.
   * Rejects with `SessionStorageTimeoutError` after `commandTimeout`.
   */
  ready(): Promise<void> {
    return this.bounded(this.connection.afterReady(() => this.group.whenReading()), 'ready');
  }

  /**
   * With localReads: resolves once the replica is seeded and answers lookups
   * of live sessions here (it starts on attach or on the first lookup), or
   * rejects with `SessionStorageTimeoutError` after `commandTimeout`. Resolves
   * at once without localReads. For tests and readiness checks: lookups are
   * right before, they just ask Redis.
   */
  localReadsReady(): Promise<void> {
    const replica = this.group.replica;
    if (replica === undefined) return Promise.resolve();
    this.group.startReading();
    return this.bounded(replica.live ? Promise.resolve() : replica.seeded, 'localReadsReady');
  }

  /** Resolves once Redis answers a command on this storage's keys, for readiness checks; rejects with `SessionStorageUnavailableError` otherwise. */
  async ping(): Promise<void> {
    await this.bounded(this.connection.afterReady(() => this.group.ping()), 'ping');
  }

  /**
   * For health checks: whether the connection is up, how far behind the
   * stream's end the reader is (seconds; null before it first read), and the
   * missed-events notices it raised since start.
   */
  healthDetails(): SessionStorageHealthDetails {
    const lag = this.group.readerLag();
    const last = this.group.lastEventsMissedAt;
    return {
      connected: this.connection.isReady,
      readerLagSeconds: lag === undefined ? null : lag / 1000,
      eventsMissed: this.group.eventsMissed,
      lastEventsMissedAt: last === undefined ? null : new Date(last).toISOString(),
    };
  }

  /** Stops the reader and the sweeps and closes the connections the storage opened; a client given to it stays open. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.group.close();
    this.deadlines.close();
    await this.connection.close();
  }

  private readonly describeHasFailure = (error: unknown): Error => this.describeFailure(error, 'hasSession');

  private bounded<T>(work: Promise<T>, operation: string): Promise<T> {
    return this.deadlines.bound(work, operation, (error) => this.describeFailure(error, operation));
  }

  private describeFailure(error: unknown, operation: string): Error {
    if (error instanceof SessionLimitError || error instanceof SessionStorageUnavailableError) return error;
    return new SessionStorageUnavailableError(`Redis could not complete ${operation}: ${describeError(error)}`, { cause: error });
  }
}

// Settled promises shared by every lookup the replica answers: that path allocates nothing.
const RESOLVED_TRUE = Promise.resolve(true);

function isPresent(score: number | null): boolean {
  return score !== null;
}
