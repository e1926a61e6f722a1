import { SessionEvent, type SessionEventsMissed, type SessionEventType } from './session-event.js';
import { checkIds, type AuthKeyId, type SessionId } from './session-id.js';
import type { SessionLogger } from './session-logger.js';
import type { SessionObserver } from './session-observer.js';
import { assertSessionStorage, checksIds, type SessionStorage, type SessionTransitionSink } from './session-storage.js';
import { describeError, toError } from './to-error.js';

export interface SessionSubjectOptions {
  /** Where observer failures are reported; `console` by default. The Nest module passes Nest's `Logger`. */
  logger?: SessionLogger;
  /**
   * Called before each notification until it returns `true`. A framework that
   * discovers observers lazily subscribes the ones that exist so far here, so
   * that an event raised before its own wiring step still reaches them; it
   * returns `true` once every observer is subscribed.
   */
  prepareObservers?: () => boolean;
}

/**
 * Keeps sessions in a {@link SessionStorage} and tells subscribed observers of
 * every real transition. Usable without Nest.
 */
export class SessionSubject {
  /** Replaced, never mutated, so a notification can hold the set as it was at the transition. */
  private observers: readonly SessionObserver[] = [];
  /** Transitions and announcements not yet settled; `drain()` waits for them. A counter, not a set: this runs per event. */
  private inFlight = 0;
  private drainWaiters: (() => void)[] = [];
  private readonly forgetOne = (): void => {
    if (--this.inFlight > 0) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const wake of waiters) wake();
  };
  private readonly logger: SessionLogger;
  private prepareObservers: (() => boolean) | undefined;
  private closing: Promise<void> | undefined;
  /** Whether the storage announces transitions itself (see {@link SessionStorage.attach}). */
  private readonly storageAnnounces: boolean;
  /** The storage's hasSession when it checks ids itself; compared on each call, so a method replaced later is checked. */
  private readonly idCheckingHasSession: unknown;

  constructor(
    private readonly storage: SessionStorage,
    options: SessionSubjectOptions = {},
  ) {
    assertSessionStorage(storage, 'The storage given to SessionSubject');
    this.logger = options.logger ?? console;
    this.prepareObservers = options.prepareObservers;
    this.idCheckingHasSession = checksIds(storage.hasSession) ? storage.hasSession : undefined;
    this.storageAnnounces = typeof storage.attach === 'function';
    if (this.storageAnnounces) storage.attach?.(this.createSink());
  }

  /** Subscribes an observer to every later event; returns a function that unsubscribes it. */
  subscribe(observer: SessionObserver): () => void {
    if (typeof (observer as Partial<SessionObserver> | null)?.update !== 'function') {
      throw new TypeError(`A session observer needs an update(event) method; got ${nameOf(observer)}`);
    }
    if (!this.observers.includes(observer)) this.observers = [...this.observers, observer];
    return () => {
      this.unsubscribe(observer);
    };
  }

  /** Stops notifying an observer; returns whether it was subscribed. */
  unsubscribe(observer: SessionObserver): boolean {
    const remaining = this.observers.filter((subscribed) => subscribed !== observer);
    if (remaining.length === this.observers.length) return false;
    this.observers = remaining;
    return true;
  }

  /**
   * Creates the session; when it is new, resolves `true` once every observer
   * has settled its handling of the `created` event. Resolves `false`, telling
   * no one, when it already existed.
   */
  createSession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
    return this.transition('created', sessionId, authKeyId);
  }

  /**
   * Resolves whether the session exists: the id check and the lookup, no other
   * work. Storages marked as checking ids themselves (the package's own) get
   * the call straight through; for any other the subject checks first, so
   * that a bad id never reaches it.
   */
  hasSession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
    const storage = this.storage;
    try {
      if (storage.hasSession !== this.idCheckingHasSession) {
        const invalid = checkIds(sessionId, authKeyId);
        if (invalid) return Promise.reject(invalid);
      }
      return storage.hasSession(sessionId, authKeyId);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Destroys the session; when it existed, resolves `true` once every observer
   * has settled its handling of the `destroyed` event. Resolves `false`,
   * telling no one, when there was nothing to destroy.
   */
  destroySession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
    return this.transition('destroyed', sessionId, authKeyId);
  }

  /** Resolves once the storage is ready (see {@link SessionStorage.ready}); at once for a storage without `ready()`. */
  ready(): Promise<void> {
    try {
      return this.storage.ready?.() ?? Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** The storage's count of live sessions; rejects with a `TypeError` for a storage without `count()`. */
  count(): Promise<number> {
    if (typeof this.storage.count !== 'function') {
      return Promise.reject(new TypeError(`${nameOf(this.storage)} has no count()`));
    }
    try {
      return this.storage.count();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Waits for every transition in flight to be announced, then closes the storage. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.drain().then(() => this.storage.close?.());
    return this.closing;
  }

  /** Resolves once every transition started so far, and any started meanwhile, has been announced. */
  async drain(): Promise<void> {
    while (this.inFlight > 0) await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
  }

  private transition(type: SessionEventType, sessionId: SessionId, authKeyId: AuthKeyId | undefined): Promise<boolean> {
    const invalid = checkIds(sessionId, authKeyId);
    if (invalid) return Promise.reject(invalid);
    const done = this.changeAndAnnounce(type, sessionId, authKeyId);
    this.track(done);
    return done;
  }

  private async changeAndAnnounce(type: SessionEventType, sessionId: SessionId, authKeyId: AuthKeyId | undefined): Promise<boolean> {
    const changed = type === 'created'
      ? await this.storage.createSession(sessionId, authKeyId)
      : await this.storage.destroySession(sessionId, authKeyId);
    if (typeof changed !== 'boolean') {
      throw new TypeError(`${nameOf(this.storage)}.${type === 'created' ? 'createSession' : 'destroySession'}() resolved ${String(changed)}; a SessionStorage must resolve a boolean`);
    }
    if (changed && !this.storageAnnounces) await this.notify(new SessionEvent(type, sessionId, authKeyId));
    return changed;
  }

  private createSink(): SessionTransitionSink {
    return {
      logger: this.logger,
      announce: (event) => {
        const settling = this.notify(event);
        if (settling !== undefined) this.track(settling);
        return settling;
      },
      eventsMissed: (notice) => {
        this.logger.warn(`Session events were missed: ${String(notice)}`);
        this.notifyEventsMissed(notice);
      },
    };
  }

  private notifyEventsMissed(notice: SessionEventsMissed): void {
    for (const observer of this.observers) {
      if (typeof observer.eventsMissed !== 'function') continue;
      try {
        const result = observer.eventsMissed(notice);
        if (isPromiseLike(result)) {
          this.track(Promise.resolve(result).then(undefined, (error: unknown) => this.reportMissed(observer, error)));
        }
      } catch (error) {
        this.reportMissed(observer, error);
      }
    }
  }

  private track(settling: Promise<unknown>): void {
    this.inFlight++;
    settling.then(this.forgetOne, this.forgetOne);
  }

  private reportMissed(observer: SessionObserver, error: unknown): void {
    const cause = toError(error);
    this.logger.error(`Session observer ${nameOf(observer)} failed on missed events: ${cause.message}`, cause.stack);
  }

  /**
   * Calls every observer at once, in order of subscription, without waiting
   * for one before calling the next, and isolates their failures. A synchronous observer costs no
   * promise: when all are synchronous this returns nothing. Otherwise it
   * returns one promise that a countdown settles once every returned promise
   * has (no `Promise.all`, no promise per observer beyond the `then` on its
   * own), and that never rejects.
   */
  private notify(event: SessionEvent): Promise<void> | undefined {
    if (this.prepareObservers !== undefined) this.runPrepareObservers();
    const observers = this.observers;
    // No closure in this loop: a synchronous observer costs a call and a check, nothing more.
    let countdown: Countdown | undefined;
    for (let i = 0; i < observers.length; i++) {
      const observer = observers[i];
      try {
        const result: unknown = observer.update(event);
        if (isPromiseLike(result)) this.settleLater((countdown ??= new Countdown()), observer, event, result);
      } catch (error) {
        // update() threw, or reading its result's `then` did.
        this.reportSafely(observer, event, error);
      }
    }
    return countdown?.start();
  }

  /** Counts an observer's pending result into the countdown, reporting its rejection. */
  private settleLater(countdown: Countdown, observer: SessionObserver, event: SessionEvent, result: PromiseLike<void>): void {
    const settled = countdown.settled;
    // Promise.resolve adopts a foreign thenable safely: it settles once, and a throwing `then` rejects.
    Promise.resolve(result).then(settled, (error: unknown) => {
      this.reportSafely(observer, event, error);
      settled();
    });
    countdown.pending++;
  }

  /** {@link report}, except that a logger that throws stops neither the other observers nor the countdown. */
  private reportSafely(observer: SessionObserver, event: SessionEvent, error: unknown): void {
    try {
      this.report(observer, event, error);
    } catch {
      // Nowhere left to report to.
    }
  }

  private runPrepareObservers(): void {
    try {
      if (this.prepareObservers?.()) this.prepareObservers = undefined;
    } catch (error) {
      // The storage has changed already; failing the call would misreport it.
      this.prepareObservers = undefined;
      this.logger.error(`Preparing session observers failed: ${describeError(error)}`, toError(error).stack);
    }
  }

  private report(observer: SessionObserver, event: SessionEvent, error: unknown): void {
    const scope = event.authKeyId === undefined ? '' : ` (auth key ${event.authKeyId})`;
    const cause = toError(error);
    this.logger.error(
      `Session observer ${nameOf(observer)} failed on '${event.type}' of session ${event.sessionId}${scope}: ${cause.message}`,
      cause.stack,
    );
  }
}

/** How notify() waits for the observers that returned a promise, without Promise.all. */
class Countdown {
  pending = 0;
  private resolve: (() => void) | undefined;
  readonly settled = (): void => {
    if (--this.pending === 0) this.resolve?.();
  };

  /**
   * The promise that settles when the count reaches zero, or nothing when no
   * count was made. Every count is made before, and every settling happens
   * after, this call.
   */
  start(): Promise<void> | undefined {
    if (this.pending === 0) return undefined;
    return new Promise<void>((resolve) => {
      this.resolve = resolve;
    });
  }
}

function isPromiseLike(value: unknown): value is PromiseLike<void> {
  return typeof (value as PromiseLike<void> | undefined)?.then === 'function';
}

/** How logs name an observer or a storage: its own `toString()` when it has one, else its class name. */
function nameOf(observer: unknown): string {
  if (observer === null || typeof observer !== 'object') return String(observer);
  try {
    if (observer.toString !== Object.prototype.toString) return String(observer);
  } catch {
    // A throwing toString is no reason to lose the report; fall back to the class name.
  }
  const className = (observer.constructor as { name?: unknown } | undefined)?.name;
  return typeof className === 'string' && className !== '' && className !== 'Object' ? className : 'an anonymous observer';
}
