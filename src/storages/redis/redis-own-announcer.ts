import { SessionEvent, type SessionEndReason, type SessionEventType } from '../../core/session-event.js';
import type { AuthKeyId, SessionId } from '../../core/session-id.js';
import type { Announced } from './redis-own-entries.js';
import type { RedisStreamCursor } from './redis-stream-cursor.js';
import { SETTLED } from './redis-transition.js';

/** What settles once the observers have; wrapped, as an async function that returned the promise itself would wait for it. */
export interface Settling {
  readonly settled: Promise<unknown>;
}

export const NOTHING_TO_SETTLE: Settling = { settled: SETTLED };

function settlingOf(announced: Announced): Settling {
  return announced.settling === undefined ? NOTHING_TO_SETTLE : { settled: announced.settling };
}

/**
 * How a key group's write path has the events it appended announced here:
 * from the script's reply when this instance's cursor is right behind them,
 * else by waiting for its reader to read them.
 */
export class OwnAnnouncer {
  constructor(
    private readonly cursor: RedisStreamCursor,
    private readonly instanceId: string,
  ) {}

  /**
   * Announces the one entry a create or destroy appended from its reply,
   * when this instance's cursor is right behind it (see
   * RedisStreamCursor.follows): the call then waits for no read. Undefined
   * when the reader is to announce it. `previousId`: the id of the stream's
   * entry right before it, when a batch's reply tells it.
   */
  fromReply(
    eventIds: readonly string[], lastSequence: number, type: SessionEventType, reason: SessionEndReason | undefined,
    member: string, sessionId: SessionId, authKeyId: AuthKeyId | undefined, deadline: number | undefined, previousId?: string,
  ): Settling | undefined {
    const cursor = this.cursor;
    if (eventIds.length !== 1 || !cursor.follows(lastSequence)) return undefined;
    const event = new SessionEvent(type, sessionId, authKeyId, { reason, origin: this.instanceId });
    return settlingOf(cursor.announceOwn(eventIds[0]!, { event, member, sequence: BigInt(lastSequence), deadline }, previousId));
  }

  /**
   * Waits until this instance's reader has read and announced the entries
   * this instance just wrote; resolves what settles once their observers have.
   */
  byReader(eventIds: readonly string[]): Promise<Settling> {
    this.cursor.batches.mustRead();
    // A create or destroy appends one entry: no loop, no async frame of its own.
    return eventIds.length === 1 ? this.cursor.announced(eventIds[0]!).then(settlingOf) : this.allByReader(eventIds);
  }

  private async allByReader(eventIds: readonly string[]): Promise<Settling> {
    let settling: Promise<unknown>[] | undefined;
    for (const id of eventIds) {
      const announced = await this.cursor.announced(id);
      if (announced.settling !== undefined) (settling ??= []).push(announced.settling);
    }
    return settling === undefined ? NOTHING_TO_SETTLE : { settled: Promise.all(settling).then(() => undefined) };
  }
}
