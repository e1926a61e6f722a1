import { SessionEvent, SessionEventsMissed, type SessionEndReason, type SessionEventType } from '../../session-event.js';
import { isSessionId, type AuthKeyId, type SessionId } from '../../session-id.js';
import type { SessionLogger } from '../../session-logger.js';
import type { SessionTransitionSink } from '../../session-storage.js';

/** One stream entry as node-redis returns it. */
export interface StreamEntry {
  id: string;
  message: Record<string, string>;
}

/** What the reader needs of its own dedicated connection. */
export interface ReaderConnection {
  read(position: string, blockMs: number, count: number): Promise<StreamEntry[] | null>;
  /** XINFO STREAM's positions, or undefined when the stream does not exist. */
  streamInfo(): Promise<{ lastId: string; maxDeletedId: string; firstId: string | undefined } | undefined>;
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
  private lastReportedGap = '0-0';

  constructor(private readonly options: RedisEventReaderOptions) {
    this.ready = new Promise((resolve) => (this.markReady = resolve));
  }

  start(): void {
    this.running ??= this.run();
  }

  /** Settles once this instance's observers have settled the entry `id`, which this instance wrote. */
  delivered(id: string): Promise<unknown> | undefined {
    const known = this.own.get(id);
    if (known?.delivered) {
      this.own.delete(id);
      return known.settling;
    }
    return new Promise<Promise<unknown> | undefined>((resolve) => {
      this.own.set(id, { since: Date.now(), delivered: false, resolve });
    }).then((settling) => settling);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.connection?.destroy();
    await this.running;
    for (const waiting of this.own.values()) waiting.resolve?.(undefined);
    this.own.clear();
  }

  private async run(): Promise<void> {
    let failures = 0;
    let checkGap = true;
    while (!this.closed) {
      try {
        if (this.connection === undefined) {
          const connection = await this.withWatchdog(this.options.connect(), 'connect');
          if (this.closed) {
            connection.destroy();
            return;
          }
          this.connection = connection;
        }
        if (this.position === undefined) {
          // Start at the stream's end as it is now: earlier transitions happened before this instance was there.
          this.position = (await this.withWatchdog(this.connection.streamInfo(), 'XINFO STREAM'))?.lastId ?? '0-0';
          this.markReady();
        } else if (checkGap) {
          await this.reportGap(this.connection, this.position);
        }
        checkGap = false;
        const entries = await this.withWatchdog(
          this.connection.read(this.position, this.options.blockMs, this.options.batchSize),
          'read',
          this.options.blockMs,
        );
        if (failures > 0) this.options.logger.warn(`Session event reader reconnected; resuming after entry ${this.position}`);
        failures = 0;
        if (entries === null) continue;
        for (const entry of entries) this.handle(entry);
        // A full batch means this reader lags; trimming may have overtaken it.
        checkGap = entries.length >= this.options.batchSize;
        if (this.own.size > 1000) this.forgetUnclaimed();
      } catch (error) {
        if (this.closed) return;
        if (failures === 0) {
          this.options.logger.warn(`Session event reader lost its Redis connection (${describe(error)}); will resume after entry ${this.position ?? 'the stream end'}`);
        }
        failures++;
        checkGap = true;
        this.connection?.destroy();
        this.connection = undefined;
        await delay(Math.min(MAX_BACKOFF_MS, 25 * 2 ** failures));
      }
    }
  }

  private async reportGap(connection: ReaderConnection, position: string): Promise<void> {
    const info = await this.withWatchdog(connection.streamInfo(), 'XINFO STREAM');
    if (info === undefined) return;
    if (compareIds(info.maxDeletedId, position) <= 0 || compareIds(info.maxDeletedId, this.lastReportedGap) <= 0) return;
    this.lastReportedGap = info.maxDeletedId;
    this.options.sink.eventsMissed(new SessionEventsMissed(
      position === '0-0' ? undefined : position,
      info.firstId ?? info.maxDeletedId,
      this.options.instanceId,
    ));
  }

  private handle(entry: StreamEntry): void {
    this.position = entry.id;
    const parsed = parseEntry(entry.message);
    if (typeof parsed === 'string') {
      this.options.logger.warn(`Skipping malformed session event ${entry.id} on ${this.options.streamKey}: ${parsed}`);
      return;
    }
    const { event, sessionKey } = parsed;
    const previous = this.chains.get(sessionKey);
    const settling = previous === undefined ? this.options.sink.announce(event) : previous.then(() => this.options.sink.announce(event));
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
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }
}

/** The event an entry records, or why it is malformed. */
function parseEntry(message: Record<string, string>): { event: SessionEvent; sessionKey: string } | string {
  const kind = TYPES[message.t ?? ''];
  if (kind === undefined) return `unknown type ${JSON.stringify(message.t)}`;
  const sessionId = parseLong(message.s);
  if (sessionId === undefined) return `bad session id ${JSON.stringify(message.s)}`;
  let authKeyId: AuthKeyId | undefined;
  if (message.a !== undefined) {
    authKeyId = parseLong(message.a);
    if (authKeyId === undefined) return `bad auth key id ${JSON.stringify(message.a)}`;
  }
  const origin = message.o;
  if (typeof origin !== 'string' || origin === '') return 'no origin';
  const [type, reason] = kind;
  return {
    event: new SessionEvent(type, sessionId, authKeyId, { reason, origin }),
    sessionKey: authKeyId === undefined ? message.s! : `${message.a}:${message.s}`,
  };
}

const CANONICAL_LONG = /^-?(0|[1-9]\d{0,18})$/;

function parseLong(text: string | undefined): SessionId | undefined {
  if (text === undefined || !CANONICAL_LONG.test(text)) return undefined;
  const value = BigInt(text);
  return isSessionId(value) ? value : undefined;
}

/** Orders stream ids ("ms-seq"), which do not sort as strings. */
export function compareIds(a: string, b: string): number {
  const [aMs = 0n, aSeq = 0n] = a.split('-').map(BigInt);
  const [bMs = 0n, bSeq = 0n] = b.split('-').map(BigInt);
  if (aMs !== bMs) return aMs < bMs ? -1 : 1;
  if (aSeq !== bSeq) return aSeq < bSeq ? -1 : 1;
  return 0;
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
