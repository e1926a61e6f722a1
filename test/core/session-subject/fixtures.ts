// Shared by the SessionSubject spec files: the observers, storages and subject their tests start from.
import {
  InMemorySessionStorage,
  SessionSubject,
  type AuthKeyId,
  type SessionEvent,
  type SessionId,
  type SessionObserver,
  type SessionStorage,
  type SessionTransitionSink,
} from 'nestjs-mtproto-sessions';
import { deferred, type Deferred } from '../../support/deferred';
import { RecordingLogger } from '../../support/recording-logger';

export const KEY_A = 0x0123456789abcdefn;
export const KEY_B = -42n;

/** A subject on a fresh in-memory storage, with a fake logger: what each test starts from. */
export function freshSubject(): { storage: InMemorySessionStorage; logger: RecordingLogger; subject: SessionSubject } {
  const storage = new InMemorySessionStorage();
  const logger = new RecordingLogger();
  return { storage, logger, subject: new SessionSubject(storage, { logger }) };
}

/** An observer that records every event it gets. */
export class RecordingObserver implements SessionObserver {
  readonly events: SessionEvent[] = [];
  update(event: SessionEvent): void {
    this.events.push(event);
  }
}

/**
 * An observer whose update() reports that it was called, then stays pending
 * until the test resolves (or rejects) its gate.
 */
export class GatedObserver implements SessionObserver {
  readonly called: Deferred<SessionEvent> = deferred<SessionEvent>();
  readonly gate: Deferred = deferred();
  readonly events: SessionEvent[] = [];
  update(event: SessionEvent): Promise<void> {
    this.events.push(event);
    this.called.resolve(event);
    return this.gate.promise;
  }
}

export class ThrowingObserver implements SessionObserver {
  update(): void {
    throw new Error('sync boom');
  }
}

export class RejectingObserver implements SessionObserver {
  async update(): Promise<void> {
    throw new Error('async boom');
  }
}

/** Wraps the in-memory storage, recording close() calls. */
export class ClosableStorage implements SessionStorage {
  readonly inner = new InMemorySessionStorage();
  closeCalls = 0;
  createSession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
    return this.inner.createSession(sessionId, authKeyId);
  }
  hasSession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
    return this.inner.hasSession(sessionId, authKeyId);
  }
  destroySession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
    return this.inner.destroySession(sessionId, authKeyId);
  }
  count(): Promise<number> {
    return this.inner.count();
  }
  async close(): Promise<void> {
    this.closeCalls++;
  }
}

/** Lets the subject be called with ids of the wrong type. */
export type LooseCall = (sessionId: unknown, authKeyId?: unknown) => Promise<boolean>;

/** A logger that records each message, as the recording logger does, then throws: a report must not break the path it reports on. */
export class ThrowingLogger extends RecordingLogger {
  constructor(private readonly throwsOn: readonly ('error' | 'warn')[] = ['error', 'warn']) {
    super();
  }
  override error(message: unknown, ...params: unknown[]): void {
    super.error(message, ...params);
    if (this.throwsOn.includes('error')) throw new Error('logger down');
  }
  override warn(message: unknown, ...params: unknown[]): void {
    super.warn(message, ...params);
    if (this.throwsOn.includes('warn')) throw new Error('logger down');
  }
}

/** A storage that announces transitions itself, and so hands the test the subject's sink. */
export class SinkStorage extends ClosableStorage {
  sink: SessionTransitionSink | undefined;
  attach(sink: SessionTransitionSink): void {
    this.sink = sink;
  }
}

/** A storage that announces nothing itself, so the subject announces on its behalf. */
export class PlainStorage implements SessionStorage {
  private readonly inner = new InMemorySessionStorage();
  createSession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
    return this.inner.createSession(sessionId, authKeyId);
  }
  hasSession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
    return this.inner.hasSession(sessionId, authKeyId);
  }
  destroySession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
    return this.inner.destroySession(sessionId, authKeyId);
  }
}
