import { SessionEventsMissed } from '../../core/session-event.js';
import type { SessionLogger } from '../../core/session-logger.js';
import {
  compareEntryIds, isLossEntry, originCodeOf, parseLossEntry, parseTransitionEntry, sequenceOf,
  type LossEntry, type StreamAfter, type StreamEntry, type StreamStart, type TransitionEntry,
} from './redis-stream-entry.js';
import { OriginNames } from './redis-origin-names.js';
import { OwnBatches } from './redis-own-batches.js';
import { NOTHING_TO_WAIT_FOR, OwnEntries, type Announced } from './redis-own-entries.js';
import { RepliedEntries } from './redis-replied-entries.js';
import { streamMessages } from './redis-storage.messages.js';

/** Hears what one stream's entries say, in stream order: its key group. */
export interface StreamListener {
  /** A valid transition entry, to apply and announce; returns what settles once its observers have (undefined: nothing to wait for). */
  transition(entry: TransitionEntry): Promise<unknown> | undefined;
  /** Entries were removed before they were read, or Redis lost history. */
  eventsMissed(notice: SessionEventsMissed): void;
  /** The stream is at the position where Redis's sorted set held `sessions` (the verifier's check): compare the replica. */
  verifyReplica(sessions: number, position: string): void;
}

/** Where a cursor was when a verifier asked Redis about its group. */
export interface VerifierMark {
  readonly sequence: bigint;
  readonly position: string;
  readonly losses: number;
}

/** Who reads the stream: started on request (see RedisEventReaders). */
export interface StreamReading {
  start(): void;
}

/**
 * Where this instance is in one key group's stream, and what it does with
 * the stream's entries: hands each to the group in stream order, tells the
 * calls of this instance when their own entries are announced, and reports
 * entries that were removed before they were read (the sequence numbers show
 * it).
 *
 * An entry is announced as soon as it is read, without waiting for the
 * observers of the one before to settle: a hung observer holds up no other
 * observer and no later entry, and an observer that awaits a transition it
 * caused never waits on its own handling (the subject bounds each observer by
 * observerTimeout).
 *
 * History that Redis itself lost (the sequence went back) is recorded in the
 * stream as a loss entry, so that every instance reports it, the ones that
 * lagged behind and cannot see it themselves included (record-loss.script).
 */
export class RedisStreamCursor {
  /** The id of the last entry the reader handled; reading resumes after it. Unknown until the reader first connects. */
  position: string | undefined;
  /**
   * The sequence number of the last entry announced here, by the reader or
   * from an own entry's reply (ahead of {@link position} then); each valid
   * entry carries one more than the one before.
   */
  sequence = 0n;
  /** Whether the last read returned a full batch of this stream, so more entries may wait behind it. */
  backlog = false;
  /** The newest loss epoch this instance knows of (see record-loss.script). */
  epoch = 0n;
  /** This cursor found that Redis lost history, and has yet to record it for the other instances. */
  lossToRecord = false;
  /**
   * Resolves once the position is known: the entry of a write sent after
   * that is read here, so its call waits for it; one written before may fall
   * before the position.
   */
  readonly ready: Promise<void>;
  /** Whether {@link ready} has resolved. */
  isReading = false;
  /**
   * Whether the replica of this stream's group may answer lookups: the reader
   * heard from Redis at the stream's end within the lease (maxStaleness). Set
   * by the reader at each read that leaves it at the end; lapsed by its
   * lease timer. A flag, so that a lookup reads no clock.
   */
  withinLease = false;
  /**
   * Whether the reader reads on a live connection: set at each read, cleared
   * at a break. Own entries are announced from their replies only then (a
   * break may hide history Redis lost, which the reader checks first).
   */
  live = false;
  /**
   * Own entries announced from a batch's reply that were proven to follow
   * {@link position} directly moved it there, so that the reader's next read
   * starts after them; a read already in flight may still return them (up to
   * the position), and the reader passes over them. False once it is past.
   */
  private movedPast = false;
  /** This instance's batches to this stream: whether the reader is to read, or their replies tell it the stream's end. */
  readonly batches = new OwnBatches();
  /** When the reader last heard from Redis at the stream's end (ms). */
  private heardAt = 0;
  /** Losses of history this cursor reported: a verifier's reply that predates one is out of date. */
  private losses = 0;
  /** A verifier's count of sessions at a sequence this cursor has yet to reach. */
  private checkpoint: { readonly sequence: bigint; readonly sessions: number } | undefined;
  private markReady!: () => void;
  /** Entries written by this instance, for the call that wrote each to wait on. */
  private readonly own = new OwnEntries();
  /** Own entries announced from their replies, for the reader to pass over. */
  private readonly replied = new RepliedEntries();
  /** Instance ids by origin code, as this group's origins hash gave them. */
  readonly originNames: OriginNames;

  constructor(
    readonly streamKey: string,
    /** This instance's id: its own entries carry it (and the verifier beats with it in the origins hash). */
    readonly instanceId: string,
    private readonly logger: SessionLogger,
    private readonly listener: StreamListener,
    private readonly reading: StreamReading,
  ) {
    this.ready = new Promise((resolve) => (this.markReady = resolve));
    this.originNames = new OriginNames(streamKey, logger);
  }

  /** Starts reading this stream (and the storage's others), if not yet started: a storage that only writes needs no reader. */
  requestReading(): void {
    this.reading.start();
  }

  /** The reader heard from Redis, at the stream's end, at `now`. */
  heard(now: number): void {
    this.heardAt = now;
    this.withinLease = true;
  }

  /** Lapses the lease if the reader has not heard from Redis since `now - leaseMs`. */
  checkLease(now: number, leaseMs: number): void {
    if (this.withinLease && now - this.heardAt > leaseMs) this.withinLease = false;
  }

  /** Where this cursor is, for a verifier about to ask Redis; undefined before it reads. */
  verifierMark(): VerifierMark | undefined {
    return this.isReading ? { sequence: this.sequence, position: this.position!, losses: this.losses } : undefined;
  }

  /**
   * What Redis held when a verifier asked, the cursor being at `mark` then.
   * A sequence below the one this cursor had already read, or a last entry
   * before its position, means the data is gone (FLUSHALL, a restart without
   * data, a restore, a deleted or evicted key) with no write to show it: it is
   * reported as lost history. Otherwise the sessions (when the verifier knows
   * them at that sequence) are compared with the replica at the reply's
   * sequence: now, or once the reader gets there.
   */
  verify(mark: VerifierMark, state: { readonly sequence: bigint; readonly sessions: number | undefined; readonly lastId: string }): void {
    if (!this.isReading || this.losses !== mark.losses) return;
    if (state.sequence < mark.sequence || compareEntryIds(state.lastId, mark.position) < 0) {
      this.reportMissed(this.position!, state.lastId, 'restarted', state.sequence);
      if (compareEntryIds(state.lastId, this.position!) < 0) this.moveBack(state.lastId);
      return;
    }
    if (state.sessions === undefined) return;
    if (state.sequence === this.sequence) this.listener.verifyReplica(state.sessions, this.position!);
    else if (state.sequence > this.sequence) this.checkpoint = { sequence: state.sequence, sessions: state.sessions };
  }

  /** Where reading starts: the stream's end when the reader first connected. */
  start(start: StreamStart): void {
    this.position = start.position;
    this.movedPast = false;
    this.sequence = start.sequence;
    this.epoch = start.epoch;
    this.isReading = true;
    this.markReady();
  }

  /**
   * Resolves once the entry `id`, which this instance wrote, has been handed
   * to this instance's observers, with what settles once they have; apart, so
   * that the caller bounds reaching the entry by commandTimeout and leaves
   * the observers to observerTimeout.
   */
  announced(id: string): Promise<Announced> {
    return this.own.announced(id);
  }

  /**
   * Whether an entry this instance just wrote, with sequence number
   * `sequence`, can be announced from its script's reply: every entry before
   * it has been announced here (the reader is live, and the sequence follows
   * this cursor's), so announcing it now keeps stream order.
   */
  follows(sequence: number): boolean {
    return this.live && !this.lossToRecord && Number(this.sequence) + 1 === sequence;
  }

  /**
   * Announces `entry` (id `id`), which this instance just wrote and which
   * {@link follows} the cursor, from its script's reply: its call need not
   * wait for the reader to read it back. The reader passes over it then.
   * When `previousId`, the id of the entry right before it in the stream
   * (a batch's reply tells it), is where the reader is, no other entry lies
   * between: the position moves past it, and the reader reads from there.
   */
  announceOwn(id: string, entry: TransitionEntry, previousId?: string): Announced {
    this.sequence = entry.sequence;
    if (previousId === this.position && !this.replied.pending) {
      this.position = id;
      this.movedPast = true;
    } else {
      this.replied.add(id, entry.sequence);
      this.batches.mustRead();
    }
    const settling = this.listener.transition(entry);
    this.reachedCheckpoint(id);
    return settling === undefined ? NOTHING_TO_WAIT_FOR : { settling };
  }

  /**
   * A batch was answered (its own entries announced from the reply), the
   * stream's last entry after it being `lastId` (undefined: the batch failed,
   * and what it wrote is unknown). When that is the position, this cursor
   * knows the stream to its end as of `now`, as a read that left the reader
   * at the end would: the lease is renewed (a burst holds the reader, and
   * its lease, for no read). Otherwise the reader is to read.
   */
  batchAnswered(lastId: string | undefined, now: number): void {
    const atEnd = lastId !== undefined && lastId === this.position && this.live && !this.lossToRecord && !this.replied.pending;
    if (atEnd) this.heard(now);
    this.batches.answered(atEnd);
  }

  /** Releases every call still waiting for an own entry. */
  close(): void {
    this.live = false;
    this.own.close();
    this.replied.clear();
    this.movedPast = false;
    this.batches.mustRead();
  }

  /**
   * After a break, with what the stream holds after the position: when no
   * entry follows it but the sequence moved, every entry added meanwhile was
   * trimmed (or Redis restarted empty).
   */
  checkTail(after: StreamAfter): void {
    const position = this.position!;
    if (after.nextExists || after.sequence === this.sequence) return;
    const missed = after.sequence > this.sequence ? after.sequence - this.sequence : 'restarted';
    this.reportMissed(position, after.lastId, missed, after.sequence);
    // Past a trim the end is ahead; after lost history it may be behind the position, and new entries come after it.
    if (missed === 'restarted' || compareEntryIds(after.lastId, position) > 0) this.moveBack(after.lastId);
  }

  /** What Redis answered to recording the loss: its epoch now, whoever recorded it, so it is not reported twice. */
  recordedLoss(epoch: bigint): void {
    this.lossToRecord = false;
    if (epoch > this.epoch) this.epoch = epoch;
  }

  /**
   * Whether `entry` needs an origin code this cursor does not know; a
   * sequence number that went back means Redis lost its data (a flush, a
   * restore), so the codes known are forgotten first.
   */
  needsOrigins(entry: StreamEntry): boolean {
    // Announced from its reply already: the reader passes over it (its sequence is behind the cursor's, rightly).
    if (this.passes(entry.id) || this.replied.isNext(entry.id)) return false;
    const code = originCodeOf(entry.message);
    if (code === undefined) return false;
    const sequence = sequenceOf(entry.message);
    if (sequence !== undefined && sequence <= this.sequence) this.originNames.forget();
    return !this.originNames.has(code);
  }

  /** The origin codes of `entries` from `from` on that this cursor does not know. */
  unknownOrigins(entries: readonly StreamEntry[], from: number): string[] {
    const unknown = new Set<string>();
    for (let i = from; i < entries.length; i++) {
      const code = originCodeOf(entries[i]!.message);
      if (code !== undefined && !this.originNames.has(code)) unknown.add(code);
    }
    return [...unknown];
  }

  handle(entry: StreamEntry): void {
    if (this.passes(entry.id)) return;
    const previous = this.position!;
    this.position = entry.id;
    if (this.replied.pending) {
      const sequence = this.replied.take(entry.id);
      if (sequence !== undefined) {
        // Announced from its reply; after lost history the reader may have announced earlier entries since.
        if (sequence > this.sequence) this.sequence = sequence;
        return;
      }
    }
    if (isLossEntry(entry.message)) {
      const loss = parseLossEntry(entry.message);
      if (typeof loss === 'string') this.logger.warn(streamMessages.malformedLoss(entry.id, this.streamKey, loss));
      else this.handleLoss(entry.id, previous, loss);
      return;
    }
    const parsed = parseTransitionEntry(entry.message, this.originNames);
    if (typeof parsed === 'string') {
      this.logger.warn(streamMessages.malformedEvent(entry.id, this.streamKey, parsed));
      return;
    }
    const sequence = parsed.sequence;
    if (sequence === this.sequence + 1n) this.sequence = sequence;
    else this.reportMissed(previous, entry.id, sequence > this.sequence ? sequence - this.sequence - 1n : 'restarted', sequence);
    const settling = this.listener.transition(parsed);
    // An entry of a dropped origin may be this instance's own, written before its registration was dropped (cut off from
    // Redis for that long): handed over too, so that its call, if still waiting, does not wait in vain; tidied if unclaimed.
    const origin = parsed.event.origin;
    if (origin === this.instanceId || origin === undefined) this.own.handOver(entry.id, settling === undefined ? NOTHING_TO_WAIT_FOR : { settling });
    this.reachedCheckpoint(entry.id);
  }

  /**
   * Whether the reader passes over `id`: an own entry the position already
   * moved past (a read in flight when it moved returns it). Clears the mark
   * at the first entry beyond it.
   */
  private passes(id: string): boolean {
    if (!this.movedPast) return false;
    if (id === this.position || compareEntryIds(id, this.position!) < 0) return true;
    this.movedPast = false;
    return false;
  }

  /** Sets the position somewhere other than past the next entry (a trim, lost history): no entry is passed over any more. */
  private moveBack(position: string): void {
    this.position = position;
    this.movedPast = false;
  }

  /** A verifier's count of sessions is compared once the cursor reaches its sequence (at entry `id`). */
  private reachedCheckpoint(id: string): void {
    const checkpoint = this.checkpoint;
    if (checkpoint !== undefined && this.sequence >= checkpoint.sequence) {
      this.checkpoint = undefined;
      if (this.sequence === checkpoint.sequence) this.listener.verifyReplica(checkpoint.sessions, id);
    }
  }

  /** Forgets own deliveries nobody claimed for long (their call failed). */
  tidy(): void {
    this.own.tidy();
  }

  /**
   * `missed` entries after `lastSeen` are gone, or the sequence went back
   * because Redis lost its data; a loss found at a loss entry needs no entry
   * of its own (`recorded`): the others read that one.
   */
  private reportMissed(lastSeen: string, resumedFrom: string, missed: bigint | 'restarted', sequence: bigint, recorded = false): void {
    this.checkpoint = undefined;
    if (missed === 'restarted') {
      this.losses++;
      // Redis may give the codes of the origins lost with it to other instances.
      this.originNames.forget();
      this.logger.warn(streamMessages.historyLost(this.streamKey, sequence, this.sequence, !recorded));
      if (!recorded) this.lossToRecord = true;
    } else {
      this.logger.warn(streamMessages.entriesTrimmed(missed, this.streamKey, lastSeen));
    }
    this.sequence = sequence;
    this.listener.eventsMissed(
      new SessionEventsMissed(lastSeen === '0-0' ? undefined : lastSeen, resumedFrom, this.instanceId, missed === 'restarted' ? 'lost' : 'trimmed'),
    );
  }

  /** A loss entry: an instance found that Redis lost history; this one reports it unless it knew already. */
  private handleLoss(id: string, previous: string, loss: LossEntry): void {
    const wentBack = loss.sequence <= this.sequence;
    if (loss.sequence === this.sequence + 1n) this.sequence = loss.sequence;
    else this.reportMissed(previous, id, wentBack ? 'restarted' : loss.sequence - this.sequence - 1n, loss.sequence, true);
    // A loss this instance found and has yet to record, and now a newer loss entry after the finding: another
    // instance found the same loss and recorded it first. The others read this entry; another would tell them twice.
    if (this.lossToRecord && loss.epoch > this.epoch && loss.origin !== this.instanceId) {
      this.lossToRecord = false;
      this.epoch = loss.epoch;
      return;
    }
    // Already reported: by this instance, which recorded it, or found it (or a newer loss) itself.
    if (wentBack || loss.epoch <= this.epoch || loss.origin === this.instanceId) {
      if (loss.epoch > this.epoch) this.epoch = loss.epoch;
      return;
    }
    this.epoch = loss.epoch;
    this.losses++;
    this.checkpoint = undefined;
    this.logger.warn(streamMessages.lossFoundElsewhere(loss.origin, this.streamKey, loss.epoch, id));
    this.listener.eventsMissed(new SessionEventsMissed(previous === '0-0' ? undefined : previous, id, loss.origin, 'lost'));
  }
}
