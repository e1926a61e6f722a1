import type { AuthKeyId, SessionId } from '../../core/session-id.js';
import type { SessionLifetime } from '../../core/session-lifetime.js';
import { SessionLimitError } from '../../core/session-storage-errors.js';
import { localNow, RedisClock } from './redis-clock.js';
import type { RedisConnection } from './redis-connection.js';
import { NO_DEADLINE, type RedisSessionKeys } from './redis-keys.js';
import { refusedPastFence, reportedFailure, rethrow } from './redis-failures.js';
import { OwnAnnouncer } from './redis-own-announcer.js';
import { RedisReplyError } from './redis-reply-error.js';
import type { RedisStreamCursor } from './redis-stream-cursor.js';
import { TransitionQueue, type QueuedTransition } from './redis-transition-queue.js';
import { SETTLED, type Transition } from './redis-transition.js';
import type { AppendArgs } from './scripts/append-event.lua.js';
import { createSessionScript, type CreateArgs } from './scripts/create-session.script.js';
import { destroySessionScript } from './scripts/destroy-session.script.js';
import { releaseQuotaScript } from './scripts/release-quota.script.js';
import { SWEEP_BATCH, sweepScript } from './scripts/sweep.script.js';
import { BatchItemError, ITEM_FAILED, transitionBatchScript, type BatchItem, type BatchOutcome, type BatchReply } from './scripts/transition-batch.script.js';
import type { TransitionReply } from './scripts/transition-reply.js';
import { LIMIT, TRANSITION } from './scripts/transition-status.js';

/** What a key group's writes need to know of the storage. */
export interface WritePathSettings {
  readonly instanceId: string;
  readonly lifetime: SessionLifetime;
  readonly streamMaxLength: number;
  /** maxSessions with one key group (the script checks it), or undefined (none, or kept by the quota with several). */
  readonly maxSessions: number | undefined;
  /** The bound of a call, for the error of one refused past its fence. */
  readonly commandTimeout: number;
}

/** Quota taken from the pool for this group, recorded in the pool's ledger (see redis-session-quota.ts). */
export interface Grant {
  /** The ledger's incarnation and the grant's id in it. */
  readonly incarnation: string;
  readonly id: string;
  readonly amount: number;
  /** The call's deadline on this group's node (Redis ms): the create that carries it refuses past it. */
  readonly fence: number;
}

/** A reclaim of the ledger: the group releases its unused quota, unless past the fence. */
export interface Reclaim {
  readonly incarnation: string;
  readonly id: string;
  readonly fence: number;
}

/** The most calls one batch script carries: its run keeps Redis busy for well under a millisecond. */
const MAX_BATCH = 64;

/**
 * One key group's transitions: each is one script that changes the sorted
 * set and appends its event together, and resolves once this instance's
 * reader has announced the events it appended (when reading: see
 * RedisStreamCursor.ready). Creates and destroys issued in the same turn go
 * together, one batch script doing each call's part in order
 * (TransitionQueue); a lone call goes by its own script.
 *
 * A create or destroy is fenced: it carries its caller's deadline on Redis's
 * clock (RedisClock), and Redis refuses it past that, so one whose caller was
 * told it failed never takes effect later. For the same reason a failure that
 * came after the command may have been sent (a connection that broke) is
 * reported no sooner than the deadline: until then the command could still
 * run. A failure from before sending, or Redis's own error reply, is
 * reported at once.
 */
export class RedisWritePath {
  private readonly clock: RedisClock;
  private readonly announcer: OwnAnnouncer;
  /** Creates (within one group's limit) and destroys issued in one turn, sent together (see TransitionQueue). */
  private readonly queue = new TransitionQueue((calls) => this.send(calls), MAX_BATCH);

  constructor(
    private readonly keys: RedisSessionKeys,
    private readonly cursor: RedisStreamCursor,
    private readonly connection: RedisConnection,
    private readonly settings: WritePathSettings,
  ) {
    this.clock = new RedisClock(keys.sessions, connection);
    this.announcer = new OwnAnnouncer(cursor, settings.instanceId);
  }

  /**
   * Creates a session (`member`, of ids `sessionId` and `authKeyId`) within
   * maxSessions (one group): changed is true if new, false if it existed.
   * `deadline`: the caller's, local (localNow).
   */
  create(member: string, sessionId: SessionId, authKeyId: AuthKeyId | undefined, deadline: number): Promise<Transition<boolean>> {
    return this.queue.add(true, member, sessionId, authKeyId, deadline);
  }

  /**
   * Creates a session within the group's quota (several groups share
   * maxSessions), adding `grant` to the quota first unless the group
   * received or refused it already: changed is 'quota' when the quota is
   * used up.
   */
  createWithinQuota(member: string, sessionId: SessionId, authKeyId: AuthKeyId | undefined, grant: Grant | undefined, deadline: number): Promise<Transition<boolean | 'quota'>> {
    return this.runCreate(member, sessionId, authKeyId, LIMIT.quotaKey, grant, deadline);
  }

  /** A caller's `deadline` (local) on this group's node: the fence of its scripts here. */
  fenceOf(deadline: number): Promise<number> {
    return this.clock.fence(deadline);
  }

  /** Destroys a session: changed is true if it existed. Arguments as in {@link create}. */
  destroy(member: string, sessionId: SessionId, authKeyId: AuthKeyId | undefined, deadline: number): Promise<Transition<boolean>> {
    return this.queue.add(false, member, sessionId, authKeyId, deadline);
  }

  /**
   * Sends calls queued together: one by the create or destroy script,
   * several by the batch script. Every batch goes by the script's hash: the
   * first time, its source is loaded (a run of no call) and the calls go one
   * by one meanwhile.
   */
  private send(calls: QueuedTransition[]): void {
    if (calls.length > 1) {
      if (this.connection.hasSent(transitionBatchScript)) {
        // runBatch settles every call itself; this is for what it could not foresee (a call already settled stays so).
        this.runBatch(calls).catch((error: unknown) => {
          for (const call of calls) call.reject(error);
        });
        return;
      }
      for (const call of calls) this.sendOne(call);
      const { instanceId, lifetime, streamMaxLength } = this.settings;
      this.connection.load(transitionBatchScript, this.keys, { origin: instanceId, now: lifetime.clock(), maxLength: streamMaxLength, limit: LIMIT.none, deadline: NO_DEADLINE, items: [] });
      return;
    }
    this.sendOne(calls[0]!);
  }

  private sendOne(call: QueuedTransition): void {
    const { member, sessionId, authKeyId, deadline } = call;
    // Without a quota the create script never answers 'quota'.
    call.resolve(call.create
      ? this.runCreate(member, sessionId, authKeyId, this.settings.maxSessions ?? LIMIT.none, undefined, deadline) as Promise<Transition<boolean>>
      : this.runDestroy(member, sessionId, authKeyId, deadline));
  }

  private async runDestroy(member: string, sessionId: SessionId, authKeyId: AuthKeyId | undefined, deadline: number): Promise<Transition<boolean>> {
    const reading = this.cursor.isReading;
    const fence = this.clock.knownFence(deadline) ?? (await this.clock.fence(deadline));
    const { instanceId, lifetime, streamMaxLength } = this.settings;
    // One literal, no spreads: this runs once per transition.
    const args = { origin: instanceId, now: lifetime.clock(), maxLength: streamMaxLength, fence, member };
    let reply: TransitionReply;
    try {
      reply = await this.connection.run(destroySessionScript, this.keys, args);
    } catch (error) {
      throw await reportedFailure(error, deadline);
    }
    this.clock.learn(reply.redisMs, localNow());
    if (reply.status === TRANSITION.fenced) throw await refusedPastFence(this.settings.commandTimeout, 'destroySession', deadline);
    const changed = reply.status === TRANSITION.done;
    if (!reading) return { changed, settled: SETTLED };
    // Its one entry: destroyed, or expired when the session had lapsed.
    const own = this.announcer.fromReply(reply.eventIds, reply.lastSequence, 'destroyed', changed ? 'destroyed' : 'expired', member, sessionId, authKeyId, undefined);
    return { changed, settled: (own ?? (await this.announcer.byReader(reply.eventIds))).settled };
  }

  /** Expires up to one batch of lapsed sessions, once Redis is ready: changed is how many. */
  sweep(): Promise<Transition<number>> {
    return this.connection.afterReady(() => this.sweepNow());
  }

  private async sweepNow(): Promise<Transition<number>> {
    const reading = this.cursor.isReading;
    const ids = await this.connection.run(sweepScript, this.keys, { ...this.appendArgs(0), batch: SWEEP_BATCH });
    return { changed: ids.length, settled: reading ? (await this.announcer.byReader(ids)).settled : SETTLED };
  }

  /**
   * Hands the group's unused quota back for `reclaim` (after expiring up to
   * one batch of lapsed sessions); resolves how much, once the expiries are
   * announced here. Their observers are not waited for: they are not the
   * waiting create's to wait for inside its commandTimeout.
   */
  async release(reclaim: Reclaim): Promise<number> {
    const reading = this.cursor.isReading;
    const reply = await this.connection.run(releaseQuotaScript, this.keys, { ...this.appendArgs(reclaim.fence), batch: SWEEP_BATCH, id: reclaim.id, incarnation: reclaim.incarnation });
    if (reading) await this.announcer.byReader(reply.eventIds);
    return reply.released;
  }

  /** The group's live sessions now. */
  private async liveCount(): Promise<number> {
    return this.connection.client.zCount(this.keys.sessions, `(${this.settings.lifetime.clock()}`, '+inf');
  }

  /**
   * The create script, in one async frame (this runs once per transition):
   * changed is true if new, false if it existed, 'quota' when the group's
   * quota is used up; a limit reached is a SessionLimitError.
   */
  private async runCreate(
    member: string, sessionId: SessionId, authKeyId: AuthKeyId | undefined, limit: number, grant: Grant | undefined, callDeadline: number,
  ): Promise<Transition<boolean | 'quota'>> {
    const reading = this.cursor.isReading;
    const { instanceId, lifetime, streamMaxLength } = this.settings;
    // A grant's fence was recorded with it in the ledger: the create runs under that very fence.
    const fence = grant?.fence ?? this.clock.knownFence(callDeadline) ?? (await this.clock.fence(callDeadline));
    const now = lifetime.clock();
    const deadline = lifetime.idleTimeout === undefined ? NO_DEADLINE : now + lifetime.idleTimeout + lifetime.touchSlack;
    // One literal, no spreads: this runs once per transition.
    const args: CreateArgs = {
      origin: instanceId, now, maxLength: streamMaxLength, fence, member, deadline, limit,
      grant: grant?.amount ?? 0, grantId: grant?.id ?? '', incarnation: grant?.incarnation ?? '',
    };
    let reply: TransitionReply;
    try {
      reply = await this.connection.run(createSessionScript, this.keys, args);
    } catch (error) {
      throw await reportedFailure(error, callDeadline);
    }
    this.clock.learn(reply.redisMs, localNow());
    const status = reply.status;
    if (status === TRANSITION.fenced) throw await refusedPastFence(this.settings.commandTimeout, 'createSession', callDeadline);
    if (status === TRANSITION.limitReached) return this.limitReached(reply.eventIds, reading);
    const changed = status === TRANSITION.quotaUsedUp ? 'quota' : status === TRANSITION.done;
    if (!reading) return { changed, settled: SETTLED };
    // Announced from the reply when it appended the created entry alone (no lapsed session expired before it).
    const own = changed === true ? this.announcer.fromReply(reply.eventIds, reply.lastSequence, 'created', undefined, member, sessionId, authKeyId, deadline === NO_DEADLINE ? undefined : deadline) : undefined;
    return { changed, settled: (own ?? (await this.announcer.byReader(reply.eventIds))).settled };
  }

  /**
   * Several calls in one batch script, their outcomes settled in order (so
   * that each own entry is announced from the reply after the one before).
   * A failure of the script itself is each call's, reported as a single
   * call's would be (no sooner than its deadline when it may still run).
   */
  private async runBatch(calls: QueuedTransition[]): Promise<void> {
    const { instanceId, lifetime, streamMaxLength } = this.settings;
    const reading = this.cursor.isReading;
    const items = new Array<BatchItem>(calls.length);
    try {
      for (let i = 0; i < calls.length; i++) {
        const call = calls[i]!;
        const fence = this.clock.knownFence(call.deadline) ?? (await this.clock.fence(call.deadline));
        items[i] = { create: call.create, member: call.member, fence };
      }
    } catch (error) {
      // Reading Redis's clock failed: nothing was sent.
      for (const call of calls) call.reject(error);
      return;
    }
    // After the fences, which may have waited for Redis's clock: as a lone call takes it.
    const now = lifetime.clock();
    const idle = lifetime.idleTimeout === undefined ? NO_DEADLINE : now + lifetime.idleTimeout + lifetime.touchSlack;
    let reply: BatchReply;
    const cursor = this.cursor;
    cursor.batches.sent();
    try {
      reply = await this.connection.run(transitionBatchScript, this.keys, { origin: instanceId, now, maxLength: streamMaxLength, limit: this.settings.maxSessions ?? LIMIT.none, deadline: idle, items });
      if (reply.outcomes.length !== calls.length) throw new RedisReplyError('a batch of transitions', reply.outcomes.length);
    } catch (error) {
      cursor.batchAnswered(undefined, 0);
      for (const call of calls) call.resolve(reportedFailure(error, call.deadline).then(rethrow));
      return;
    }
    this.clock.learn(reply.redisMs, localNow());
    // The entry before each call's own: the stream's last before the batch, then the last of the call before.
    let previousId = reply.previousId;
    for (let i = 0; i < calls.length; i++) {
      const call = calls[i]!;
      const outcome = reply.outcomes[i]!;
      try {
        call.resolve(this.outcome(call, outcome, reading, idle, previousId));
      } catch (error) {
        // No call is left unsettled, whatever happens to another.
        call.reject(error);
      }
      if (outcome.status !== ITEM_FAILED && outcome.eventIds.length > 0) previousId = outcome.eventIds[outcome.eventIds.length - 1]!;
    }
    // Where the stream ends after the batch (the own entries announced from the reply moved the cursor there, or not).
    cursor.batchAnswered(previousId, Date.now());
  }

  /** What one call of a batch did, as the create or destroy script's reply would have told it. */
  private outcome(call: QueuedTransition, outcome: BatchOutcome, reading: boolean, idle: number, previousId: string): Transition<boolean> | Promise<Transition<boolean>> {
    if (outcome.status === ITEM_FAILED) return Promise.reject(new BatchItemError(outcome.error));
    const operation = call.create ? 'createSession' : 'destroySession';
    const { status, eventIds, lastSequence } = outcome;
    if (status === TRANSITION.fenced) return refusedPastFence(this.settings.commandTimeout, operation, call.deadline).then(rethrow);
    if (status === TRANSITION.limitReached) return this.limitReached(eventIds, reading);
    const changed = status === TRANSITION.done;
    if (!reading) return { changed, settled: SETTLED };
    const { member, sessionId, authKeyId } = call;
    const own = call.create
      ? (changed ? this.announcer.fromReply(eventIds, lastSequence, 'created', undefined, member, sessionId, authKeyId, idle === NO_DEADLINE ? undefined : idle, previousId) : undefined)
      : this.announcer.fromReply(eventIds, lastSequence, 'destroyed', changed ? 'destroyed' : 'expired', member, sessionId, authKeyId, undefined, previousId);
    if (own !== undefined) return { changed, settled: own.settled };
    return this.announcer.byReader(eventIds).then((settling) => ({ changed, settled: settling.settled }));
  }

  /** A create refused at the group's limit: the lapsed sessions it expired to make room are announced first, as any other transition. */
  private async limitReached(eventIds: readonly string[], reading: boolean): Promise<never> {
    if (reading && eventIds.length > 0) await this.announcer.byReader(eventIds);
    throw new SessionLimitError(this.settings.maxSessions ?? 0, await this.liveCount().catch(() => undefined));
  }

  private appendArgs(fence: number): AppendArgs {
    const { instanceId, lifetime, streamMaxLength } = this.settings;
    return { origin: instanceId, now: lifetime.clock(), maxLength: streamMaxLength, fence };
  }

}
