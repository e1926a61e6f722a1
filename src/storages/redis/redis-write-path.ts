import { SessionEvent, type SessionEndReason, type SessionEventType } from '../../core/session-event.js';
import type { AuthKeyId, SessionId } from '../../core/session-id.js';
import type { SessionLifetime } from '../../core/session-lifetime.js';
import { SessionLimitError, SessionStorageTimeoutError } from '../../core/session-storage-errors.js';
import { sleep } from './backoff.js';
import { localNow, RedisClock } from './redis-clock.js';
import type { RedisConnection } from './redis-connection.js';
import { NO_DEADLINE, type RedisSessionKeys } from './redis-keys.js';
import type { Announced } from './redis-own-entries.js';
import type { RedisStreamCursor } from './redis-stream-cursor.js';
import { SETTLED, type Transition } from './redis-transition.js';
import type { AppendArgs } from './scripts/append-event.lua.js';
import { createSessionScript, type CreateArgs } from './scripts/create-session.script.js';
import { destroySessionScript } from './scripts/destroy-session.script.js';
import { releaseQuotaScript } from './scripts/release-quota.script.js';
import { SWEEP_BATCH, sweepScript } from './scripts/sweep.script.js';
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

/** What settles once the observers have; wrapped, as an async function that returned the promise itself would wait for it. */
interface Settling {
  readonly settled: Promise<unknown>;
}

const NOTHING_TO_SETTLE: Settling = { settled: SETTLED };

function settlingOf(announced: Announced): Settling {
  return announced.settling === undefined ? NOTHING_TO_SETTLE : { settled: announced.settling };
}

/**
 * One key group's transitions: each is one script that changes the sorted
 * set and appends its event together, and resolves once this instance's
 * reader has announced the events it appended (when reading: see
 * RedisStreamCursor.ready).
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

  constructor(
    private readonly keys: RedisSessionKeys,
    private readonly cursor: RedisStreamCursor,
    private readonly connection: RedisConnection,
    private readonly settings: WritePathSettings,
  ) {
    this.clock = new RedisClock(keys.sessions, connection);
  }

  /**
   * Creates a session (`member`, of ids `sessionId` and `authKeyId`) within
   * maxSessions (one group): changed is true if new, false if it existed.
   * `deadline`: the caller's, local (localNow).
   */
  create(member: string, sessionId: SessionId, authKeyId: AuthKeyId | undefined, deadline: number): Promise<Transition<boolean>> {
    // Without a quota the script never answers 'quota'.
    return this.runCreate(member, sessionId, authKeyId, this.settings.maxSessions ?? LIMIT.none, undefined, deadline) as Promise<Transition<boolean>>;
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
  async destroy(member: string, sessionId: SessionId, authKeyId: AuthKeyId | undefined, deadline: number): Promise<Transition<boolean>> {
    const reading = this.cursor.isReading;
    const fence = this.clock.knownFence(deadline) ?? (await this.clock.fence(deadline));
    const { instanceId, lifetime, streamMaxLength } = this.settings;
    // One literal, no spreads: this runs once per transition.
    const args = { origin: instanceId, now: lifetime.clock(), maxLength: streamMaxLength, fence, member };
    let reply: TransitionReply;
    try {
      reply = await this.connection.run(destroySessionScript, this.keys, args);
    } catch (error) {
      throw await this.failure(error, deadline);
    }
    this.clock.learn(reply.redisMs, localNow());
    if (reply.status === TRANSITION.fenced) throw await this.refusedPastFence('destroySession', deadline);
    const changed = reply.status === TRANSITION.done;
    if (!reading) return { changed, settled: SETTLED };
    // Its one entry: destroyed, or expired when the session had lapsed.
    const own = this.ownEntry(reply, 'destroyed', changed ? 'destroyed' : 'expired', member, sessionId, authKeyId, undefined);
    return { changed, settled: (own ?? (await this.announced(reply.eventIds))).settled };
  }

  /** Expires up to one batch of lapsed sessions, once Redis is ready: changed is how many. */
  sweep(): Promise<Transition<number>> {
    return this.connection.afterReady(() => this.sweepNow());
  }

  private async sweepNow(): Promise<Transition<number>> {
    const reading = this.cursor.isReading;
    const ids = await this.connection.run(sweepScript, this.keys, { ...this.appendArgs(0), batch: SWEEP_BATCH });
    return { changed: ids.length, settled: reading ? (await this.announced(ids)).settled : SETTLED };
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
    if (reading) await this.announced(reply.eventIds);
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
      throw await this.failure(error, callDeadline);
    }
    this.clock.learn(reply.redisMs, localNow());
    const status = reply.status;
    if (status === TRANSITION.fenced) throw await this.refusedPastFence('createSession', callDeadline);
    if (status === TRANSITION.limitReached) {
      // Lapsed sessions it expired to make room are announced here before the refusal, as any other transition.
      if (reading && reply.eventIds.length > 0) await this.announced(reply.eventIds);
      throw new SessionLimitError(limit, await this.liveCount().catch(() => undefined));
    }
    const changed = status === TRANSITION.quotaUsedUp ? 'quota' : status === TRANSITION.done;
    if (!reading) return { changed, settled: SETTLED };
    // Announced from the reply when it appended the created entry alone (no lapsed session expired before it).
    const own = changed === true ? this.ownEntry(reply, 'created', undefined, member, sessionId, authKeyId, deadline === NO_DEADLINE ? undefined : deadline) : undefined;
    return { changed, settled: (own ?? (await this.announced(reply.eventIds))).settled };
  }

  /**
   * Announces the one entry a create or destroy appended from its reply,
   * when this instance's cursor is right behind it (see
   * RedisStreamCursor.follows): the call then waits for no read. Undefined
   * when the reader is to announce it.
   */
  private ownEntry(
    reply: TransitionReply, type: SessionEventType, reason: SessionEndReason | undefined,
    member: string, sessionId: SessionId, authKeyId: AuthKeyId | undefined, deadline: number | undefined,
  ): Settling | undefined {
    const cursor = this.cursor;
    if (reply.eventIds.length !== 1 || !cursor.follows(reply.lastSequence)) return undefined;
    const event = new SessionEvent(type, sessionId, authKeyId, { reason, origin: this.settings.instanceId });
    return settlingOf(cursor.announceOwn(reply.eventIds[0]!, { event, member, sequence: BigInt(reply.lastSequence), deadline }));
  }

  /**
   * A failed script's error, given no sooner than `deadline` when the script
   * may have been sent (it could still run until its fence passes).
   */
  private async failure(error: unknown, deadline: number): Promise<unknown> {
    if (!failedBeforeSending(error)) await sleep(deadline - localNow());
    return error;
  }

  /** A script Redis refused past its fence: the error, given no sooner than `deadline` (the fence errs early by how late this instance learnt Redis's clock). */
  private async refusedPastFence(operation: string, deadline: number): Promise<SessionStorageTimeoutError> {
    await sleep(deadline - localNow());
    return new SessionStorageTimeoutError(operation, this.settings.commandTimeout, 'Redis received it past its deadline and did not run it');
  }

  private appendArgs(fence: number): AppendArgs {
    const { instanceId, lifetime, streamMaxLength } = this.settings;
    return { origin: instanceId, now: lifetime.clock(), maxLength: streamMaxLength, fence };
  }

  /**
   * Waits until this instance's reader has read and announced the entries
   * this instance just wrote; resolves what settles once their observers have.
   */
  private announced(eventIds: readonly string[]): Promise<Settling> {
    // A create or destroy appends one entry: no loop, no async frame of its own.
    return eventIds.length === 1 ? this.cursor.announced(eventIds[0]!).then(settlingOf) : this.announcedAll(eventIds);
  }

  private async announcedAll(eventIds: readonly string[]): Promise<Settling> {
    let settling: Promise<unknown>[] | undefined;
    for (const id of eventIds) {
      const announced = await this.cursor.announced(id);
      if (announced.settling !== undefined) (settling ??= []).push(announced.settling);
    }
    return settling === undefined ? NOTHING_TO_SETTLE : { settled: Promise.all(settling).then(() => undefined) };
  }
}

/**
 * Errors that say the command never left this process (the client was
 * offline or closed, or not ready) or that Redis ran it and answered with an
 * error: either way it cannot run later. Anything else, a connection that
 * broke with the command maybe on the wire, could still let it run.
 */
const NOT_PENDING = new Set(['ClientOfflineError', 'ClientClosedError', 'ErrorReply', 'SimpleError', 'BlobError', 'ReplyError', 'RedisClientNotReadyError']);

function failedBeforeSending(error: unknown): boolean {
  return error instanceof Error && NOT_PENDING.has(error.constructor.name);
}
