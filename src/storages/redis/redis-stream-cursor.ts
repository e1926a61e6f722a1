import { SessionEvent, SessionEventsMissed, type SessionEndReason, type SessionEventType } from '../../core/session-event.js';
import type { AuthKeyId } from '../../core/session-id.js';
import type { SessionLogger } from '../../core/session-logger.js';
import type { SessionTransitionSink } from '../../core/session-storage.js';
import { parseLong } from './redis-keys.js';

/** One stream entry as node-redis returns it. */
export interface StreamEntry {
  id: string;
  message: Record<string, string>;
}

/** One stream a reader reads: one key group's. */
export interface ReaderStream {
  readonly streamKey: string;
  /** Hears this stream's events and gaps. */
  readonly sink: SessionTransitionSink;
  /**
   * Called with each valid entry, in stream order, before it is announced (the
   * replica). `member` as in the sorted set; `deadline`, in ms, on created
   * entries of sessions that expire.
   */
  readonly apply?: (event: SessionEvent, member: string, deadline: number | undefined) => void;
}

const TYPES: Record<string, [SessionEventType, SessionEndReason | undefined]> = {
  c: ['created', undefined],
  d: ['destroyed', 'destroyed'],
  x: ['destroyed', 'expired'],
};
/** Own deliveries that nobody claimed (their call failed) are forgotten after this long. */
const UNCLAIMED_TTL_MS = 5 * 60_000;

/** An own entry handed to the observers: what settles once they all have (nothing when they were synchronous). */
export interface Announced {
  readonly settling: Promise<unknown> | undefined;
}

const NOTHING_TO_WAIT_FOR: Announced = Object.freeze({ settling: undefined });

interface OwnDelivery {
  readonly since: number;
  announced?: Announced;
  resolve?: (announced: Announced) => void;
}

/**
 * Where a reader is in one stream, and what it does with the stream's
 * entries: announces each, in stream order, tells the calls of this instance
 * when their own entries are announced, and reports entries that were
 * removed before they were read (the sequence numbers show it).
 *
 * An entry is announced as soon as it is read, without waiting for the
 * observers of the one before to settle: a hung observer holds up no other
 * observer and no later entry, and an observer that awaits a transition it
 * caused never waits on its own handling (the subject bounds each observer by
 * observerTimeout).
 *
 * History that Redis itself lost (the sequence went back) is recorded in the
 * stream as a loss entry, so that every instance reports it, the ones that
 * lagged behind and cannot see it themselves included (RECORD_LOSS_SCRIPT).
 */
export class RedisStreamCursor {
  /** The id of the last entry handled; reading resumes after it. Unknown until the reader first connects. */
  position: string | undefined;
  /** The sequence number of the last entry handled; each valid entry carries one more than the one before. */
  sequence = 0n;
  /** Whether the last read returned a full batch of this stream, so more entries may wait behind it. */
  backlog = false;
  /** The newest loss epoch this instance knows of (see RECORD_LOSS_SCRIPT). */
  epoch = 0n;
  /** This cursor found that Redis lost history, and has yet to record it for the other instances. */
  lossToRecord = false;
  /** Entries written by this instance, by id, for the call that wrote each to wait on. */
  private readonly own = new Map<string, OwnDelivery>();
  /** Instance ids by origin code, as this group's origins hash gave them; forgotten with the connection (a restarted Redis gives new codes). */
  readonly originNames = new Map<string, string>();

  constructor(
    private readonly stream: ReaderStream,
    private readonly instanceId: string,
    private readonly logger: SessionLogger,
  ) {}

  get streamKey(): string {
    return this.stream.streamKey;
  }

  /**
   * Resolves once the entry `id`, which this instance wrote, has been handed
   * to this instance's observers, with what settles once they have; apart, so
   * that the caller bounds reaching the entry by commandTimeout and leaves
   * the observers to observerTimeout.
   */
  announced(id: string): Promise<Announced> {
    const known = this.own.get(id);
    if (known?.announced !== undefined) {
      this.own.delete(id);
      return Promise.resolve(known.announced);
    }
    return new Promise<Announced>((resolve) => {
      this.own.set(id, { since: Date.now(), resolve });
    });
  }

  /** Releases every call still waiting for an own entry. */
  close(): void {
    for (const waiting of this.own.values()) waiting.resolve?.(NOTHING_TO_WAIT_FOR);
    this.own.clear();
  }

  /**
   * After a break, with what the stream holds after the position: when no
   * entry follows it but the sequence moved, every entry added meanwhile was
   * trimmed (or Redis restarted empty).
   */
  checkTail(after: { nextExists: boolean; lastId: string; sequence: bigint }): void {
    const position = this.position!;
    if (after.nextExists || after.sequence === this.sequence) return;
    const missed = after.sequence > this.sequence ? after.sequence - this.sequence : 'restarted';
    this.reportMissed(position, after.lastId, missed, after.sequence);
    // Past a trim the end is ahead; after lost history it may be behind the position, and new entries come after it.
    if (missed === 'restarted' || compareIds(after.lastId, position) > 0) this.position = after.lastId;
  }

  /** What Redis answered to recording the loss: its epoch now, whoever recorded it, so it is not reported twice. */
  recordedLoss(epoch: bigint): void {
    this.lossToRecord = false;
    if (epoch > this.epoch) this.epoch = epoch;
  }

  /**
   * Whether `entries[at]` needs origin codes this cursor does not know; a
   * sequence number that went back means Redis lost its data (a flush, a
   * restore), so the codes known are forgotten first.
   */
  needsOrigins(entry: StreamEntry): boolean {
    const code = entry.message.i;
    if (code === undefined) return false;
    const n = entry.message.n;
    if (n !== undefined && SEQUENCE.test(n) && BigInt(n) <= this.sequence) this.originNames.clear();
    return !this.originNames.has(code);
  }

  /** The origin codes of `entries` from `from` on that this cursor does not know. */
  unknownOrigins(entries: readonly StreamEntry[], from: number): string[] {
    const unknown = new Set<string>();
    for (let i = from; i < entries.length; i++) {
      const code = entries[i]!.message.i;
      if (code !== undefined && !this.originNames.has(code)) unknown.add(code);
    }
    return [...unknown];
  }

  learnOrigins(codes: readonly string[], names: readonly (string | null)[]): void {
    codes.forEach((code, i) => {
      const name = names[i];
      if (typeof name === 'string' && name !== '') this.originNames.set(code, name);
    });
  }

  handle(entry: StreamEntry): void {
    const previous = this.position!;
    this.position = entry.id;
    if (entry.message.t === 'l') {
      const loss = parseLoss(entry.message);
      if (typeof loss === 'string') this.logger.warn(`Skipping malformed loss entry ${entry.id} on ${this.stream.streamKey}: ${loss}`);
      else this.handleLoss(entry.id, previous, loss);
      return;
    }
    const parsed = parseEntry(entry.message, this.originNames);
    if (typeof parsed === 'string') {
      this.logger.warn(`Skipping malformed session event ${entry.id} on ${this.stream.streamKey}: ${parsed}`);
      return;
    }
    const { event, sessionKey, sequence, deadline } = parsed;
    if (sequence === this.sequence + 1n) this.sequence = sequence;
    else this.reportMissed(previous, entry.id, sequence > this.sequence ? sequence - this.sequence - 1n : 'restarted', sequence);
    this.stream.apply?.(event, sessionKey, deadline);
    const settling = this.stream.sink.announce(event);
    if (event.origin === this.instanceId) this.handOver(entry.id, settling === undefined ? NOTHING_TO_WAIT_FOR : { settling });
  }

  /** Forgets own deliveries nobody claimed for long (their call failed), once many have piled up. */
  tidy(): void {
    if (this.own.size <= 1000) return;
    const horizon = Date.now() - UNCLAIMED_TTL_MS;
    for (const [id, delivery] of this.own) {
      if (delivery.since >= horizon) continue;
      this.own.delete(id);
      delivery.resolve?.(NOTHING_TO_WAIT_FOR);
    }
  }

  /**
   * `missed` entries after `lastSeen` are gone, or the sequence went back
   * because Redis lost its data; a loss found at a loss entry needs no entry
   * of its own (`recorded`): the others read that one.
   */
  private reportMissed(lastSeen: string, resumedFrom: string, missed: bigint | 'restarted', sequence: bigint, recorded = false): void {
    if (missed === 'restarted') {
      this.logger.warn(
        `Session event stream ${this.stream.streamKey} went back to sequence ${sequence} from ${this.sequence}: Redis lost acknowledged history (a restart without its data, a restore from an older snapshot, a failover to a replica that lagged); sessions and events may be gone.${recorded ? '' : ' Telling the other instances'}`,
      );
      if (!recorded) this.lossToRecord = true;
    } else {
      this.logger.warn(`${missed} session event(s) on ${this.stream.streamKey} after ${lastSeen} were removed before this instance read them`);
    }
    this.sequence = sequence;
    this.stream.sink.eventsMissed(
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
    this.logger.warn(`Instance ${loss.origin} found that Redis lost acknowledged session history on ${this.stream.streamKey} (loss ${loss.epoch}): sessions and events before ${id} may be gone`);
    this.stream.sink.eventsMissed(new SessionEventsMissed(previous === '0-0' ? undefined : previous, id, loss.origin, 'lost'));
  }

  private handOver(id: string, announced: Announced): void {
    const waiting = this.own.get(id);
    if (waiting?.resolve !== undefined) {
      this.own.delete(id);
      waiting.resolve(announced);
    } else {
      this.own.set(id, { since: Date.now(), announced });
    }
  }
}

interface LossEntry {
  readonly epoch: bigint;
  readonly origin: string;
  readonly sequence: bigint;
}

/** A loss entry's fields (t = l, g = epoch, o = origin instance id, n = sequence), or why it is malformed. */
function parseLoss(message: Record<string, string>): LossEntry | string {
  const { g: epoch, o: origin, n: sequence } = message;
  if (epoch === undefined || !SEQUENCE.test(epoch)) return `bad epoch ${JSON.stringify(epoch)}`;
  if (typeof origin !== 'string' || origin === '') return 'no origin';
  if (sequence === undefined || !SEQUENCE.test(sequence)) return `bad sequence number ${JSON.stringify(sequence)}`;
  return { epoch: BigInt(epoch), origin, sequence: BigInt(sequence) };
}

/** The event an entry records, or why it is malformed. */
function parseEntry(message: Record<string, string>, originNames: ReadonlyMap<string, string>): { event: SessionEvent; sessionKey: string; sequence: bigint; deadline: number | undefined } | string {
  const kind = TYPES[message.t ?? ''];
  if (kind === undefined) return `unknown type ${JSON.stringify(message.t)}`;
  const sessionId = parseLong(message.s);
  if (sessionId === undefined) return `bad session id ${JSON.stringify(message.s)}`;
  let authKeyId: AuthKeyId | undefined;
  if (message.a !== undefined) {
    authKeyId = parseLong(message.a);
    if (authKeyId === undefined) return `bad auth key id ${JSON.stringify(message.a)}`;
  }
  let origin: string | undefined = message.o;
  if (message.i !== undefined) {
    origin = originNames.get(message.i);
    if (origin === undefined) return `unknown origin code ${JSON.stringify(message.i)}`;
  }
  if (typeof origin !== 'string' || origin === '') return 'no origin';
  const sequence = message.n;
  if (sequence === undefined || !SEQUENCE.test(sequence)) return `bad sequence number ${JSON.stringify(sequence)}`;
  const [type, reason] = kind;
  return {
    event: new SessionEvent(type, sessionId, authKeyId, { reason, origin }),
    sessionKey: authKeyId === undefined ? message.s! : `${message.a}:${message.s}`,
    sequence: BigInt(sequence),
    // A deadline that is not a positive integer is left out: the replica then asks Redis about the session.
    deadline: message.e !== undefined && DEADLINE.test(message.e) ? Number(message.e) : undefined,
  };
}

const SEQUENCE = /^[1-9]\d{0,18}$/;
const DEADLINE = /^[1-9]\d{0,15}$/;

/** The ms part of a stream id: when Redis added the entry. */
export function entryTime(id: string | undefined): number {
  return id === undefined ? 0 : Number(id.slice(0, id.indexOf('-')));
}

/** Orders stream ids ("ms-seq"), which do not sort as strings. */
function compareIds(a: string, b: string): number {
  const [aMs = 0n, aSeq = 0n] = a.split('-').map(BigInt);
  const [bMs = 0n, bSeq = 0n] = b.split('-').map(BigInt);
  if (aMs !== bMs) return aMs < bMs ? -1 : 1;
  if (aSeq !== bSeq) return aSeq < bSeq ? -1 : 1;
  return 0;
}
