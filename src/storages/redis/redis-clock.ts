import type { RedisConnection } from './redis-connection.js';
import { clockScript } from './scripts/clock.script.js';

/**
 * The best lower bound of the offset is the largest of the recent ones (a
 * reply handled late, on a busy event loop, gives a loose one); older ones
 * are let go, as clocks drift and step. Kept in two windows of this length.
 */
const OFFSET_WINDOW_MS = 30_000;

/** This process's clock for fences: monotonic (no NTP steps), in ms. */
export function localNow(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * What this instance knows of the clock of the Redis node that holds a key
 * (a key group's, or the pool's): a lower bound of (Redis time − local
 * time), from the TIME that every transition script and take reads and
 * returns. A reply read at Redis time r and received here at local time t
 * was read no later than t, so the offset is at least r − t; the largest
 * such bound of the last few seconds is kept.
 *
 * A fence is a caller's deadline on Redis's clock: local deadline + the
 * bound, never later than the true moment on Redis's clock, so a script that
 * runs past its fence runs after its caller could have been told it failed,
 * and refuses. A reconnect (maybe to another server after a failover) makes
 * the bound unknown again; the next transition reads TIME first.
 */
export class RedisClock {
  /** The largest bound of the current window, and of the one before. */
  private current: number | undefined;
  private previous: number | undefined;
  private windowStart = 0;
  /** The connection generation the bounds were learnt on. */
  private generation = -1;
  /** A read of Redis's clock in flight, which every fence asked for meanwhile waits for. */
  private reading: Promise<void> | undefined;
  /** The deadline (local) of the call that started {@link reading}: a read still pending past it is stuck. */
  private readingUntil = 0;
  /** The connection generation {@link reading} was sent on: after a reconnect it may never be answered. */
  private readingGeneration = -1;

  constructor(
    /** A key on the node whose clock this is. */
    private readonly routeKey: string,
    private readonly connection: RedisConnection,
  ) {}

  /** Learns from a reply that read Redis's clock at `redisMs`, received at `receivedAt` (local). */
  learn(redisMs: number, receivedAt: number): void {
    // 1 ms for the reply's rounding down to whole ms.
    const bound = redisMs - receivedAt - 1;
    const generation = this.connection.generation;
    if (generation !== this.generation) {
      // Maybe another server (a failover, a restart): nothing learnt before holds.
      this.generation = generation;
      this.current = this.previous = undefined;
      this.windowStart = receivedAt;
    } else if (receivedAt - this.windowStart > OFFSET_WINDOW_MS) {
      this.previous = this.current;
      this.current = undefined;
      this.windowStart = receivedAt;
    }
    if (this.current === undefined || bound > this.current) this.current = bound;
  }

  /**
   * `localDeadline` on Redis's clock (ms), reading Redis's clock first when
   * the offset is unknown. One read serves every call that asks while it
   * runs, and they get their fences in the order they asked: a transition
   * must not overtake an earlier one of this instance's (a destroy sent
   * before the create issued just before it).
   */
  fence(localDeadline: number): Promise<number> {
    const known = this.knownFence(localDeadline);
    if (known !== undefined) return Promise.resolve(known);
    // A read sent before a reconnect, or that outlived the deadline of the call that started it, may never be
    // answered (its connection broke with it on the wire): calls made since read anew rather than wait for it.
    if (this.reading === undefined || localNow() >= this.readingUntil || this.readingGeneration !== this.connection.generation) {
      const reading: Promise<void> = this.readClock().finally(() => {
        if (this.reading === reading) this.reading = undefined;
      });
      this.reading = reading;
      this.readingUntil = localDeadline;
      this.readingGeneration = this.connection.generation;
    }
    return this.reading.then(() => localDeadline + Math.max(this.current!, this.previous ?? -Infinity));
  }

  /**
   * `localDeadline` on Redis's clock, or undefined while the offset is
   * unknown or being read (then {@link fence} gives it, in turn): a
   * transition's common path, with no promise.
   */
  knownFence(localDeadline: number): number | undefined {
    if (this.reading !== undefined || this.current === undefined || this.generation !== this.connection.generation) return undefined;
    return localDeadline + Math.max(this.current, this.previous ?? -Infinity);
  }

  private async readClock(): Promise<void> {
    const redisMs = await this.connection.run(clockScript, this.routeKey, undefined);
    this.learn(redisMs, localNow());
  }
}
