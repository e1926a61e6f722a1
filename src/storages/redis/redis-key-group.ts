import { SessionEventsMissed } from '../../core/session-event.js';
import type { SessionLifetime } from '../../core/session-lifetime.js';
import type { SessionLogger } from '../../core/session-logger.js';
import type { SessionTransitionSink } from '../../core/session-storage.js';
import type { Deadlines } from './deadlines.js';
import type { RedisConnection } from './redis-connection.js';
import type { RedisEventReaders } from './redis-event-reader.js';
import type { RedisSessionKeys } from './redis-keys.js';
import { RedisReadPath } from './redis-read-path.js';
import { RedisReplica } from './redis-replica.js';
import type { RedisStreamCursor, StreamListener } from './redis-stream-cursor.js';
import type { TransitionEntry } from './redis-stream-entry.js';
import { RedisSweeper } from './redis-sweeper.js';
import { streamMessages } from './redis-storage.messages.js';
import { RedisWritePath } from './redis-write-path.js';

/** What every key group of one storage shares. */
export interface KeyGroupParts {
  readonly connection: RedisConnection;
  readonly readers: RedisEventReaders;
  readonly deadlines: Deadlines;
  readonly logger: SessionLogger;
}

export interface KeyGroupSettings {
  readonly instanceId: string;
  readonly lifetime: SessionLifetime;
  readonly streamMaxLength: number;
  /** Whether the group keeps a replica of its sessions for lookups. */
  readonly localReads: boolean;
  /** maxSessions when this group alone keeps it (one group); undefined otherwise. */
  readonly maxSessions: number | undefined;
  readonly commandTimeout: number;
}

/**
 * One key group: a sorted set of sessions, the stream of their transitions
 * and its sequence, under one hash tag (one Cluster slot). It puts together
 * the group's read path (lookups, the replica), its write path
 * (transitions), its sweeper, and its place in the stream (the cursor), and
 * hears the stream's entries: it applies each to the replica and announces
 * it. Everything kept per stream is the group's own: a gap rebuilds this
 * group's replica alone.
 */
export class RedisKeyGroup implements StreamListener {
  readonly cursor: RedisStreamCursor;
  /** This instance's copy of the group's live sessions (with localReads), kept by the read path. */
  readonly replica: RedisReplica | undefined;
  readonly read: RedisReadPath;
  readonly write: RedisWritePath;
  private readonly sweeper: RedisSweeper;
  /** Where announcements go once a subject attached; until then nobody listens. */
  private sink: SessionTransitionSink | undefined;
  /** Missed-events notices this group's reader raised, and when the last one was (ms). */
  eventsMissedCount = 0;
  lastEventsMissedAt: number | undefined;

  private readonly logger: SessionLogger;
  private readonly instanceId: string;

  constructor(readonly keys: RedisSessionKeys, parts: KeyGroupParts, settings: KeyGroupSettings) {
    const { connection, readers, deadlines, logger } = parts;
    this.logger = logger;
    this.instanceId = settings.instanceId;
    this.cursor = readers.add(keys, this);
    this.replica = settings.localReads ? new RedisReplica(settings.lifetime) : undefined;
    this.read = new RedisReadPath(keys, this.replica, this.cursor, connection, deadlines, settings.lifetime, logger);
    this.write = new RedisWritePath(keys, this.cursor, connection, settings);
    this.sweeper = new RedisSweeper(this.write, deadlines, logger);
    if (settings.lifetime.idleTimeout !== undefined) this.sweeper.start(settings.lifetime.sweepInterval);
  }

  /** Announces the group's transitions to `sink` from now on. */
  attach(sink: SessionTransitionSink): void {
    this.sink = sink;
    this.read.attach(sink);
  }

  transition(entry: TransitionEntry): Promise<unknown> | undefined {
    this.read.apply(entry);
    return this.sink?.announce(entry.event);
  }

  verifyReplica(sessions: number, position: string): void {
    if (!this.read.diverges(sessions)) return;
    this.logger.warn(streamMessages.replicaDiverged(this.keys.sessions, sessions, position));
    this.eventsMissed(new SessionEventsMissed(position, position, this.instanceId, 'diverged'));
  }

  eventsMissed(notice: SessionEventsMissed): void {
    this.eventsMissedCount++;
    this.lastEventsMissedAt = Date.now();
    this.read.rebuild();
    this.sink?.eventsMissed(notice);
  }

  /** Expires every lapsed session of the group now; resolves how many, once announced here. */
  expireAll(): Promise<number> {
    return this.sweeper.expireAll();
  }

  close(): void {
    this.sweeper.stop();
    this.read.close();
  }
}
