import { SessionEvent, type SessionEndReason, type SessionEventType } from '../../core/session-event.js';
import { parseDecimalId, type AuthKeyId } from '../../core/session-id.js';
import { quoteForeign as quote } from '../../core/to-error.js';

/**
 * The stream entry, in one place: its field names (the scripts that write
 * entries are built from these), and the parsing of what a reader reads.
 *
 * A transition entry: t = c (created) | d (destroyed) | x (expired),
 * s = session id, a = auth key id (scoped sessions only), i = the origin's
 * interned code (o = the instance id itself, in entries of older versions),
 * n = sequence number (one more than the entry before it, so a reader sees
 * entries trimmed unread), e = the idle deadline in ms (created entries of
 * expiring sessions only, for the replicas).
 * A loss entry: t = l, g = the loss epoch, o = the instance that recorded it,
 * n = sequence number (see RECORD_LOSS in scripts/record-loss.script.ts).
 */
export const ENTRY = {
  type: 't',
  sessionId: 's',
  authKeyId: 'a',
  originCode: 'i',
  origin: 'o',
  sequence: 'n',
  deadline: 'e',
  epoch: 'g',
} as const;

/** The values of the type field. */
export const ENTRY_TYPE = { created: 'c', destroyed: 'd', expired: 'x', loss: 'l' } as const;

/** One stream entry as a reader hands it on: its id and its fields. */
export interface StreamEntry {
  id: string;
  message: Record<string, string>;
}

/** Where a reader starts in a stream: its last entry ('0-0' when empty), its sequence so far and its loss epoch. */
export interface StreamStart {
  readonly position: string;
  readonly sequence: bigint;
  readonly epoch: bigint;
}

/** A stream after a reader's position, once the reader is back from a break. */
export interface StreamAfter {
  readonly nextExists: boolean;
  readonly lastId: string;
  readonly sequence: bigint;
}

/** A transition entry, parsed. */
export interface TransitionEntry {
  readonly event: SessionEvent;
  /** The session's member in the sorted set. */
  readonly member: string;
  readonly sequence: bigint;
  /** The idle deadline in ms, on created entries of expiring sessions. */
  readonly deadline: number | undefined;
}

/** A loss entry, parsed. */
export interface LossEntry {
  readonly epoch: bigint;
  readonly origin: string;
  readonly sequence: bigint;
}

const TYPES: Record<string, readonly [SessionEventType, SessionEndReason | undefined]> = {
  [ENTRY_TYPE.created]: ['created', undefined],
  [ENTRY_TYPE.destroyed]: ['destroyed', 'destroyed'],
  [ENTRY_TYPE.expired]: ['destroyed', 'expired'],
};

const SEQUENCE = /^[1-9]\d{0,18}$/;
const DEADLINE = /^[1-9]\d{0,15}$/;

export function isLossEntry(message: Record<string, string>): boolean {
  return message[ENTRY.type] === ENTRY_TYPE.loss;
}

/** The entry's origin code, if it has one. */
export function originCodeOf(message: Record<string, string>): string | undefined {
  return message[ENTRY.originCode];
}

/** The entry's sequence number when it is well formed, else undefined. */
export function sequenceOf(message: Record<string, string>): bigint | undefined {
  const sequence = message[ENTRY.sequence];
  return sequence !== undefined && SEQUENCE.test(sequence) ? BigInt(sequence) : undefined;
}

/** A loss entry's fields, or why it is malformed. */
export function parseLossEntry(message: Record<string, string>): LossEntry | string {
  const epoch = message[ENTRY.epoch];
  const origin = message[ENTRY.origin];
  if (epoch === undefined || !SEQUENCE.test(epoch)) return `bad epoch ${quote(epoch)}`;
  if (typeof origin !== 'string' || origin === '') return 'no origin';
  const sequence = sequenceOf(message);
  if (sequence === undefined) return `bad sequence number ${quote(message[ENTRY.sequence])}`;
  return { epoch: BigInt(epoch), origin, sequence };
}

/**
 * The transition an entry records, or why it is malformed; origin codes are
 * resolved by `originNames`, where null marks a code whose origin was dropped
 * from the origins hash: its event has no origin.
 */
export function parseTransitionEntry(message: Record<string, string>, originNames: { get(code: string): string | null | undefined }): TransitionEntry | string {
  const kind = TYPES[message[ENTRY.type] ?? ''];
  if (kind === undefined) return `unknown type ${quote(message[ENTRY.type])}`;
  const session = message[ENTRY.sessionId];
  const sessionId = parseDecimalId(session);
  if (sessionId === undefined) return `bad session id ${quote(session)}`;
  const authKey = message[ENTRY.authKeyId];
  let authKeyId: AuthKeyId | undefined;
  if (authKey !== undefined) {
    authKeyId = parseDecimalId(authKey);
    if (authKeyId === undefined) return `bad auth key id ${quote(authKey)}`;
  }
  let origin: string | undefined = message[ENTRY.origin];
  const code = message[ENTRY.originCode];
  if (code !== undefined) {
    const name = originNames.get(code);
    if (name === undefined) return `unknown origin code ${quote(code)}`;
    origin = name ?? undefined;
  } else if (typeof origin !== 'string' || origin === '') {
    return 'no origin';
  }
  const sequence = sequenceOf(message);
  if (sequence === undefined) return `bad sequence number ${quote(message[ENTRY.sequence])}`;
  const [type, reason] = kind;
  const deadline = message[ENTRY.deadline];
  return {
    event: new SessionEvent(type, sessionId, authKeyId, { reason, origin }),
    member: authKey === undefined ? session! : `${authKey}:${session}`,
    sequence,
    // A deadline that is not a positive integer is left out: the replica then asks Redis about the session.
    deadline: deadline !== undefined && DEADLINE.test(deadline) ? Number(deadline) : undefined,
  };
}

/** The ms part of a stream id: when Redis added the entry. */
export function entryTime(id: string | undefined): number {
  return id === undefined ? 0 : Number(id.slice(0, id.indexOf('-')));
}

/**
 * Orders stream ids ("ms-seq"), which do not sort as strings. Ids as Redis
 * writes them (digits with no leading zero) compare by length, then digit by
 * digit, with nothing allocated: the reader compares each entry it passes over.
 */
export function compareEntryIds(a: string, b: string): number {
  if (a === b) return 0;
  const aDash = a.indexOf('-');
  const bDash = b.indexOf('-');
  if (isCanonical(a, aDash) && isCanonical(b, bDash)) {
    if (aDash !== bDash) return aDash < bDash ? -1 : 1;
    const aSeqDigits = a.length - aDash;
    const bSeqDigits = b.length - bDash;
    for (let i = 0; i < aDash; i++) {
      const difference = a.charCodeAt(i) - b.charCodeAt(i);
      if (difference !== 0) return difference < 0 ? -1 : 1;
    }
    if (aSeqDigits !== bSeqDigits) return aSeqDigits < bSeqDigits ? -1 : 1;
    return a < b ? -1 : 1;
  }
  return compareParsedEntryIds(a, b);
}

/** Whether `id` (its dash at `dash`) is "ms-seq" with no leading zero in either number. */
function isCanonical(id: string, dash: number): boolean {
  const ZERO = 48;
  return dash > 0 && dash < id.length - 1 && (id.charCodeAt(0) !== ZERO || dash === 1) && (id.charCodeAt(dash + 1) !== ZERO || id.length === dash + 2);
}

/** compareEntryIds for any id: a leading zero ("0-0", "5-0"), or a bare "ms". */
function compareParsedEntryIds(a: string, b: string): number {
  const [aMs = 0n, aSeq = 0n] = a.split('-').map(BigInt);
  const [bMs = 0n, bSeq = 0n] = b.split('-').map(BigInt);
  if (aMs !== bMs) return aMs < bMs ? -1 : 1;
  if (aSeq !== bSeq) return aSeq < bSeq ? -1 : 1;
  return 0;
}
