import type { AuthKeyId, SessionId } from '../../core/session-id.js';
import type { SessionLifetime } from '../../core/session-lifetime.js';
import type { Deadlines } from './deadlines.js';
import { bounded } from './redis-failures.js';
import type { RedisConnection } from './redis-connection.js';
import { sessionMember, type RedisSessionKeys } from './redis-keys.js';
import type { RedisReplica } from './redis-replica.js';
import { touchSessionsScript } from './scripts/touch-sessions.script.js';

/** Sessions per background touch script. */
const TOUCH_BATCH = 500;

interface PendingTouch {
  readonly member: string;
  readonly sessionId: SessionId;
  readonly authKeyId: AuthKeyId | undefined;
}

/**
 * Touches of sessions the replica answered as live but due for one, sent
 * after the lookup has answered. At most one per session is queued or in
 * flight, and what one synchronous run queued goes out as one script (node-
 * redis pipelines what is sent in one tick). The replica learns each reply.
 */
export class RedisBackgroundTouches {
  /** Members with a touch queued or in flight. */
  private readonly touching = new Set<string>();
  private pending: PendingTouch[] = [];
  private flushScheduled = false;
  private closed = false;

  constructor(
    private readonly keys: RedisSessionKeys,
    private readonly replica: RedisReplica,
    private readonly connection: RedisConnection,
    private readonly deadlines: Deadlines,
    private readonly lifetime: SessionLifetime,
  ) {}

  /** Queues a touch of a session; nothing if one is queued or in flight. */
  later(sessionId: SessionId, authKeyId: AuthKeyId | undefined): void {
    const member = sessionMember(sessionId, authKeyId);
    if (this.touching.has(member)) return;
    this.touching.add(member);
    this.pending.push({ member, sessionId, authKeyId });
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // A microtask: the touches go out before any call made after this lookup, so Redis sees them in that order.
    queueMicrotask(() => this.flush());
  }

  close(): void {
    this.closed = true;
    for (const touch of this.pending) this.touching.delete(touch.member);
    this.pending = [];
  }

  private flush(): void {
    this.flushScheduled = false;
    const queued = this.pending;
    this.pending = [];
    for (let at = 0; at < queued.length; at += TOUCH_BATCH) this.send(queued.slice(at, at + TOUCH_BATCH));
  }

  private send(batch: PendingTouch[]): void {
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
        batch.forEach((touched, i) => this.replica.confirm(touched.sessionId, touched.authKeyId, deadlines[i]! > 0 ? deadlines[i] : undefined));
      },
      // Not confirmed: the replica keeps the deadline it had, and once that has passed, a lookup asks Redis.
      done,
    );
  }
}
