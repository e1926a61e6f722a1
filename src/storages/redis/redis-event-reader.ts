import { SessionEvent, SessionEventsMissed, type SessionEndReason, type SessionEventType } from '../../core/session-event.js';
import type { AuthKeyId } from '../../core/session-id.js';
import type { SessionLogger } from '../../core/session-logger.js';
import type { SessionTransitionSink } from '../../core/session-storage.js';
import { parseLong } from './redis-keys.js';
import { describeError, toError } from '../../core/to-error.js';

/** One stream entry as node-redis returns it. */
export interface StreamEntry {
  id: string;
  message: Record<string, string>;
}

/** What the reader needs of its own dedicated connection. */
export interface ReaderConnection {
  read(position: string, blockMs: number, count: number): Promise<StreamEntry[] | null>;
  /** The stream's last entry id ('0-0' when empty) and the sequence number so far, read together. */
  start(): Promise<{ position: string; sequence: bigint }>;
  /** Whether an entry follows `position`, the stream's last id, and the sequence number so far, read together. */
  after(position: string): Promise<{ nextExists: boolean; lastId: string; sequence: bigint }>;
  /** The instance ids of origin codes (null where unknown), read together. */
  origins(codes: string[]): Promise<(string | null)[]>;
  /** Drops the connection at once (a read may be blocked on it). */
  destroy(): void;
}

export interface RedisEventReaderOptions {
  readonly instanceId: string;
  readonly streamKey: string;
  readonly sink: SessionTransitionSink;
  readonly logger: SessionLogger;
  /** Opens a fresh dedicated connection; called at start and after a connection is given up on. */
  readonly connect: () => Promise<ReaderConnection>;
  /** How long one blocking read waits for new entries. */
  readonly blockMs: number;
  /** How long past `blockMs` a read may take before its connection is declared dead. */
  readonly commandTimeout: number;
  readonly batchSize: number;
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
const MAX_BACKOFF_MS = 1000;

interface OwnDelivery {
  readonly since: number;
  settling?: Promise<unknown> | undefined;
  delivered: boolean;
  resolve?: (settling: Promise<unknown> | undefined) => void;
}

/**
 * Reads the shared transition stream from where it last was and announces
 * every entry to this instance's observers, in stream order per session.
 * A connection that breaks is replaced and reading resumes from the last
 * entry seen; entries trimmed meanwhile are reported, never skipped silently.
 */
export class RedisEventReader {
  /** The id of the last entry handled; reading resumes after it. Unknown until the first connection. */
  private position: string | undefined;
  /** Resolves once the reader knows where the stream ends, so no entry written after that can be missed. */
  readonly ready: Promise<void>;
  private markReady!: () => void;
  private connection: ReaderConnection | undefined;
  private closed = false;
  private running: Promise<void> | undefined;
  /** Last announcement per session still settling, so the next one for that session waits for it. */
  private readonly chains = new Map<string, Promise<unknown>>();
  /** Entries written by this instance, by id, for the call that wrote each to wait on. */
  private readonly own = new Map<string, OwnDelivery>();
  /** The sequence number of the last entry handled; each valid entry carries one more than the one before. */
  private sequence = 0n;
  /** Instance ids by origin code, as this Redis gave them; forgotten with the connection (a restarted Redis gives new codes). */
  private readonly originNames = new Map<string, string>();
  /** When a read last left the reader at the stream's end; undefined before the first read. */
  private caughtUpAt: number | undefined;
  /** Whether the last read returned a full batch, so more entries may wait behind it. */
  private backlog = false;
  private reading = false;

  constructor(private readonly options: RedisEventReaderOptions) {
    this.ready = new Promise((resolve) => (this.markReady = resolve));
  }

  start(): void {
    this.running ??= this.run();
  }

  /**
   * How far behind the stream's end this reader is, in ms: 0 while it reads on
   * a live connection at the end (its blocking read hears each entry at once);
   * the age of the last entry handled while it works through a backlog; the
   * time since it was last at the end while it has no connection. Undefined
   * until its first read.
   */
  lag(now = Date.now()): number | undefined {
    if (this.caughtUpAt === undefined) return undefined;
    if (!this.reading) return Math.max(0, now - this.caughtUpAt);
    if (!this.backlog) return 0;
    return Math.max(0, now - entryTime(this.position));
  }

  /** Settles once this instance's observers have settled the entry `id`, which this instance wrote. */
  delivered(id: string): Promise<unknown> | undefined {
    const known = this.own.get(id);
    if (known?.delivered) {
      this.own.delete(id);
      return known.settling;
    }
    // Resolving with the announcement's promise adopts it: this settles when the observers have.
    return new Promise<unknown>((resolve) => {
      this.own.set(id, { since: Date.now(), delivered: false, resolve });
    });
  }

  /**
   * Stops reading at once. Not waiting for the loop: it may be inside a
   * connect or a backoff, and it announces nothing once closed; a connection
   * that arrives late is destroyed where it arrives.
   */
  close(): void {
    this.closed = true;
    this.connection?.destroy();
    this.connection = undefined;
    for (const waiting of this.own.values()) waiting.resolve?.(undefined);
    this.own.clear();
  }

  private async run(): Promise<void> {
    let failures = 0;
    let afterBreak = false;
    while (!this.closed) {
      try {
        if (this.connection === undefined) {
          const connecting = this.options.connect();
          const connection = await this.withWatchdog(connecting, 'connect').catch((error: unknown) => {
            // A connection that arrives after the watchdog gave up on it is nobody's: close it.
            connecting.then((late) => late.destroy(), () => undefined);
            throw error;
          });
          if (this.closed) {
            connection.destroy();
            return;
          }
          this.connection = connection;
          this.originNames.clear();
        }
        if (this.position === undefined) {
          // Start at the stream's end as it is now: earlier transitions happened before this instance was there.
          const start = await this.withWatchdog(this.connection.start(), 'reading the stream end');
          this.position = start.position;
          this.sequence = start.sequence;
          this.caughtUpAt = Date.now();
          this.markReady();
        } else if (afterBreak) {
          await this.checkTrimmedTail(this.connection, this.position);
        }
        afterBreak = false;
        this.reading = true;
        const entries = await this.withWatchdog(
          this.connection.read(this.position, this.options.blockMs, this.options.batchSize),
          'read',
          this.options.blockMs,
        );
        if (this.closed) return;
        if (failures > 0) this.options.logger.warn(`Session event reader reconnected; resuming after entry ${this.position}`);
        failures = 0;
        this.backlog = entries !== null && entries.length >= this.options.batchSize;
        if (!this.backlog) this.caughtUpAt = Date.now();
        if (entries === null) continue;
        for (let i = 0; i < entries.length; i++) {
          const entry = entries[i]!;
          const code = entry.message.i;
          if (code !== undefined) {
            // A sequence number that went back means Redis lost its data (a flush, a restore): its codes are new.
            const n = entry.message.n;
            if (n !== undefined && SEQUENCE.test(n) && BigInt(n) <= this.sequence) this.originNames.clear();
            if (!this.originNames.has(code)) await this.resolveOrigins(this.connection, entries, i);
          }
          this.handle(entry);
        }
        if (this.own.size > 1000) this.forgetUnclaimed();
      } catch (error) {
        if (this.closed) return;
        if (failures === 0) {
          this.options.logger.warn(`Session event reader lost its Redis connection (${describeError(error)}); will resume after entry ${this.position ?? 'the stream end'}`);
        }
        failures++;
        afterBreak = true;
        this.reading = false;
        this.connection?.destroy();
        this.connection = undefined;
        await delay(Math.min(MAX_BACKOFF_MS, 25 * 2 ** failures));
      }
    }
  }

  /** Learns the instance ids of the origin codes of `entries` from `from` on that it does not know. */
  private async resolveOrigins(connection: ReaderConnection, entries: StreamEntry[], from: number): Promise<void> {
    const unknown = new Set<string>();
    for (let i = from; i < entries.length; i++) {
      const code = entries[i]!.message.i;
      if (code !== undefined && !this.originNames.has(code)) unknown.add(code);
    }
    const codes = [...unknown];
    const names = await this.withWatchdog(connection.origins(codes), 'reading origin codes');
    codes.forEach((code, i) => {
      const name = names[i];
      if (typeof name === 'string' && name !== '') this.originNames.set(code, name);
    });
  }

  /**
   * After a break: entries that follow the position are checked one by one as
   * they are read; this covers the case where none is left, because every
   * entry added meanwhile was trimmed (or Redis restarted empty).
   */
  private async checkTrimmedTail(connection: ReaderConnection, position: string): Promise<void> {
    const after = await this.withWatchdog(connection.after(position), 'checking the stream after a break');
    if (after.nextExists || after.sequence === this.sequence) return;
    const missed = after.sequence > this.sequence ? after.sequence - this.sequence : 'restarted';
    this.reportMissed(position, after.lastId, missed, after.sequence);
    if (compareIds(after.lastId, position) > 0) this.position = after.lastId;
  }

  /** `missed` entries after `lastSeen` are gone, or the sequence went back because Redis lost its data. */
  private reportMissed(lastSeen: string, resumedFrom: string, missed: bigint | 'restarted', sequence: bigint): void {
    if (missed === 'restarted') {
      this.options.logger.warn(`Session event stream ${this.options.streamKey} started over (did Redis lose its data?): sessions and events before ${resumedFrom} may be gone`);
    } else {
      this.options.logger.warn(`${missed} session event(s) on ${this.options.streamKey} after ${lastSeen} were removed before this instance read them`);
    }
    this.sequence = sequence;
    this.options.sink.eventsMissed(new SessionEventsMissed(lastSeen === '0-0' ? undefined : lastSeen, resumedFrom, this.options.instanceId));
  }

  private handle(entry: StreamEntry): void {
    const previous = this.position!;
    this.position = entry.id;
    const parsed = parseEntry(entry.message, this.originNames);
    if (typeof parsed === 'string') {
      this.options.logger.warn(`Skipping malformed session event ${entry.id} on ${this.options.streamKey}: ${parsed}`);
      return;
    }
    const { event, sessionKey, sequence, deadline } = parsed;
    if (sequence === this.sequence + 1n) this.sequence = sequence;
    else this.reportMissed(previous, entry.id, sequence > this.sequence ? sequence - this.sequence - 1n : 'restarted', sequence);
    this.options.apply?.(event, sessionKey, deadline);
    const before = this.chains.get(sessionKey);
    const settling = before === undefined ? this.options.sink.announce(event) : before.then(() => this.options.sink.announce(event));
    if (settling !== undefined) {
      this.chains.set(sessionKey, settling);
      const forget = () => {
        if (this.chains.get(sessionKey) === settling) this.chains.delete(sessionKey);
      };
      settling.then(forget, forget);
    }
    if (event.origin === this.options.instanceId) this.handOver(entry.id, settling);
  }

  private handOver(id: string, settling: Promise<unknown> | undefined): void {
    const waiting = this.own.get(id);
    if (waiting !== undefined && !waiting.delivered) {
      this.own.delete(id);
      waiting.resolve?.(settling);
    } else {
      this.own.set(id, { since: Date.now(), delivered: true, settling });
    }
  }

  private forgetUnclaimed(): void {
    const horizon = Date.now() - UNCLAIMED_TTL_MS;
    for (const [id, delivery] of this.own) {
      if (delivery.since >= horizon) continue;
      this.own.delete(id);
      delivery.resolve?.(undefined);
    }
  }

  /** Gives up on a connection that neither answers nor fails, which a silently dead socket would do. */
  private withWatchdog<T>(work: Promise<T>, what: string, extraMs = 0): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what} did not answer within ${extraMs + this.options.commandTimeout} ms`)), extraMs + this.options.commandTimeout);
      work.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(toError(error));
        },
      );
    });
  }
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
function entryTime(id: string | undefined): number {
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

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
