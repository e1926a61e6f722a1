import type { SessionLifetime } from '../../core/session-lifetime.js';
import type { SessionLogger } from '../../core/session-logger.js';
import type { SessionTransitionSink } from '../../core/session-storage.js';
import { SessionLimitError } from '../../core/session-storage-errors.js';
import type { RedisConnection } from './redis-connection.js';
import { RedisEventReader } from './redis-event-reader.js';
import { NO_DEADLINE, type RedisSessionKeys } from './redis-keys.js';
import { createScript, destroyScript, sweepScript, touchScript, type TransitionReply } from './redis-scripts.js';
import { RedisSweeper, SWEEP_BATCH } from './redis-sweeper.js';

const READ_BLOCK_MS = 1000;
const READ_BATCH = 1000;

/** What every key group of one storage shares. */
export interface KeyGroupSettings {
  readonly connection: RedisConnection;
  readonly instanceId: string;
  readonly lifetime: SessionLifetime;
  readonly streamMaxLength: number;
  readonly commandTimeout: number;
  readonly logger: () => SessionLogger;
  /** Bounds a call by the storage's commandTimeout, describing its failure as the storage's typed error. */
  readonly bound: <T>(work: Promise<T>, operation: string) => Promise<T>;
}

/**
 * One key group: a sorted set of sessions, the stream of their transitions and
 * its sequence, under one hash tag (one Cluster slot), with the reader that
 * announces that stream here and the sweeper that expires its sessions. The
 * operations run on the group's keys only; a storage may hold several groups.
 * Calls are not bounded here: the storage bounds them.
 */
export class RedisKeyGroup {
  private reader: RedisEventReader | undefined;
  private readonly sweeper: RedisSweeper;
  /** Missed-events notices this group's reader raised, and when the last one was (ms). */
  eventsMissed = 0;
  lastEventsMissedAt: number | undefined;

  constructor(
    readonly keys: RedisSessionKeys,
    private readonly settings: KeyGroupSettings,
  ) {
    this.sweeper = new RedisSweeper(() => this.sweepBatch(), settings.logger);
    if (settings.lifetime.idleTimeout !== undefined) this.sweeper.start(settings.lifetime.sweepInterval);
  }

  /** Starts reading the group's stream into `sink`; resolves once the reader knows where the stream ends. */
  attach(sink: SessionTransitionSink, logger: SessionLogger): Promise<void> {
    const { connection, instanceId, commandTimeout } = this.settings;
    this.reader = new RedisEventReader({
      instanceId,
      streamKey: this.keys.events,
      sink: {
        logger: sink.logger,
        announce: (event) => sink.announce(event),
        eventsMissed: (notice) => {
          this.eventsMissed++;
          this.lastEventsMissedAt = Date.now();
          sink.eventsMissed(notice);
        },
      },
      logger,
      connect: () => connection.openReader(this.keys),
      blockMs: READ_BLOCK_MS,
      commandTimeout,
      batchSize: READ_BATCH,
    });
    this.reader.start();
    return this.reader.ready;
  }

  /** How far behind its stream's end the group's reader is, in ms; undefined before it first read or when not attached. */
  readerLag(): number | undefined {
    return this.reader?.lag();
  }

  /** Creates `member`; resolves true if new, once this instance has announced what the call did. */
  async create(member: string): Promise<boolean> {
    const { lifetime, instanceId, streamMaxLength } = this.settings;
    const now = lifetime.clock();
    const deadline = lifetime.idleTimeout === undefined ? NO_DEADLINE : now + lifetime.idleTimeout + lifetime.touchSlack;
    const reply = await this.settings.connection.run(createScript, this.keys, {
      member, origin: instanceId, now, deadline, maxSessions: lifetime.maxSessions ?? 0, maxLength: streamMaxLength,
    });
    return this.settle(reply);
  }

  async destroy(member: string): Promise<boolean> {
    const { lifetime, instanceId, streamMaxLength } = this.settings;
    const reply = await this.settings.connection.run(destroyScript, this.keys, {
      member, origin: instanceId, now: lifetime.clock(), maxLength: streamMaxLength,
    });
    return this.settle(reply);
  }

  /** The session's score, null when absent (sessions that never expire: no deadline to check). */
  score(member: string): Promise<number | null> {
    return this.settings.connection.client.zScore(this.keys.sessions, member);
  }

  /** Whether the session is live, pushing its deadline when due (with idleTimeout). */
  touch(member: string): Promise<boolean> {
    const { lifetime } = this.settings;
    const now = lifetime.clock();
    const idleTimeout = lifetime.idleTimeout!;
    return this.settings.connection.run(touchScript, this.keys, { member, now, idleTimeout, deadline: now + idleTimeout + lifetime.touchSlack });
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
    this.sweeper.stop();
    this.reader?.close();
  }

  /** Expires up to one batch of lapsed sessions; resolves how many, once announced here. */
  private async sweepBatch(): Promise<number> {
    const { lifetime, instanceId, streamMaxLength } = this.settings;
    const { connection } = this.settings;
    const ids = await this.settings.bound(connection.afterReady(() => connection.run(sweepScript, this.keys, {
      now: lifetime.clock(), batch: SWEEP_BATCH, origin: instanceId, maxLength: streamMaxLength,
    })), 'expireIdleSessions');
    await this.announced(ids);
    return ids.length;
  }

  /** Maps a transition's reply to the call's result, after this instance has announced its events. */
  private async settle(reply: TransitionReply): Promise<boolean> {
    await this.announced(reply.eventIds);
    if (reply.status === -1) throw new SessionLimitError(this.settings.lifetime.maxSessions!);
    return reply.status === 1;
  }

  /** Waits until this instance's reader has announced the entries this instance just wrote (once attached). */
  private async announced(eventIds: readonly string[]): Promise<void> {
    if (this.reader === undefined) return;
    for (const id of eventIds) await this.reader.delivered(id);
  }
}
