import { InFlight } from './in-flight.js';
import { nameOf } from './name-of.js';
import { ObserverNotifier } from './observer-notifier.js';
import { SessionMetrics } from './session-metrics.js';
import { SessionEvent, type SessionEventType } from './session-event.js';
import { checkIds, type AuthKeyId, type SessionId } from './session-id.js';
import type { SessionObserver } from './session-observer.js';
import { assertSessionStorage, checksIds, type SessionStorage, type SessionTransitionSink } from './session-storage.js';
import { assertSubjectOptions, DEFAULT_OBSERVER_TIMEOUT, type SessionSubjectOptions } from './session-subject-options.js';
import { describeError } from './to-error.js';

export type { SessionSubjectOptions } from './session-subject-options.js';

/**
 * Keeps sessions in a {@link SessionStorage} and tells subscribed observers of
 * every real transition, each exactly once. Usable without Nest.
 *
 * The observers of one event are called concurrently. One that throws,
 * rejects or outlives `observerTimeout` is logged by name and stops neither
 * the others nor the call, and the storage change stands. Observers may call
 * the subject from inside `update()`; each hears one session's events in the
 * order of its transitions.
 */
export class SessionSubject {
  private readonly notifier: ObserverNotifier;
  /** Transitions and announcements not yet settled; `drain()` waits for them. */
  private readonly inFlight = new InFlight();
  private closing: Promise<void> | undefined;
  /** Whether the storage announces transitions itself (see {@link SessionStorage.attach}). */
  private readonly storageAnnounces: boolean;
  /** The storage's hasSession when it checks ids itself; compared on each call, so a method replaced later is checked. */
  private readonly idCheckingHasSession: unknown;
  private readonly metrics: SessionMetrics;

  /** Throws a `TypeError`, naming what is wrong, for a storage without the three methods or for bad options. */
  constructor(
    private readonly storage: SessionStorage,
    options: SessionSubjectOptions = {},
  ) {
    assertSessionStorage(storage, 'The storage given to SessionSubject');
    assertSubjectOptions(options);
    this.idCheckingHasSession = checksIds(storage.hasSession) ? storage.hasSession : undefined;
    this.storageAnnounces = typeof storage.attach === 'function';
    const origin = (storage as { instanceId?: unknown }).instanceId;
    this.metrics = new SessionMetrics(storage, typeof origin === 'string' ? origin : undefined);
    this.notifier = new ObserverNotifier(options.logger ?? console, options.observerTimeout ?? DEFAULT_OBSERVER_TIMEOUT, this.metrics, options.prepareObservers);
    if (this.storageAnnounces) storage.attach?.(this.createSink());
  }

  /**
   * Subscribes an observer to every later event; returns a function that
   * unsubscribes it. Subscribing one twice changes nothing. Throws a
   * `TypeError` for an object without `update(event)`.
   */
  subscribe(observer: SessionObserver): () => void {
    this.notifier.subscribe(observer);
    return () => {
      this.unsubscribe(observer);
    };
  }

  /** Stops notifying an observer; returns whether it was subscribed. */
  unsubscribe(observer: SessionObserver): boolean {
    return this.notifier.unsubscribe(observer);
  }

  /**
   * Creates the session; when it is new, resolves `true` once every observer
   * subscribed at that moment has settled its handling of the `created` event
   * (or failed, or outlived `observerTimeout`). Resolves `false`, telling no
   * one, when it already existed. Rejects with `InvalidSessionIdError` for a
   * bad id, or with the storage's error; then no one is told.
   */
  createSession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
    return this.transition('created', sessionId, authKeyId);
  }

  /** Resolves whether the session exists; rejects with `InvalidSessionIdError` for a bad id, or with the storage's error. */
  hasSession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
    // Counted, not recorded: an observable instrument reports the count when metrics are collected.
    this.metrics.lookups++;
    const storage = this.storage;
    try {
      // A storage that checks ids itself (the package's own) is not made to check them twice.
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
   * Destroys the session; when it existed, resolves `true` once every
   * observer subscribed at that moment has settled its handling of the
   * `destroyed` event (or failed, or outlived `observerTimeout`). Resolves
   * `false`, telling no one, when there was nothing to destroy. Rejects with
   * `InvalidSessionIdError` for a bad id, or with the storage's error; then no
   * one is told.
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
    this.closing ??= this.drain().then(() => this.storage.close?.()).finally(() => this.metrics.dispose());
    return this.closing;
  }

  /** Resolves once every transition started so far, and any started meanwhile, has been announced and its observers have settled (within `observerTimeout`). */
  drain(): Promise<void> {
    return this.inFlight.drained();
  }

  private transition(type: SessionEventType, sessionId: SessionId, authKeyId: AuthKeyId | undefined): Promise<boolean> {
    let done: Promise<boolean>;
    try {
      const invalid = checkIds(sessionId, authKeyId);
      if (invalid) return Promise.reject(invalid);
      done = this.changeAndAnnounce(type, sessionId, authKeyId);
    } catch (error) {
      // Nothing here should throw; if it does, it is still a rejection, never a synchronous throw.
      return Promise.reject(error);
    }
    this.inFlight.track(done);
    return done;
  }

  private async changeAndAnnounce(type: SessionEventType, sessionId: SessionId, authKeyId: AuthKeyId | undefined): Promise<boolean> {
    const operation = type === 'created' ? 'createSession' : 'destroySession';
    const started = performance.now();
    let changed: unknown;
    try {
      changed = type === 'created'
        ? await this.storage.createSession(sessionId, authKeyId)
        : await this.storage.destroySession(sessionId, authKeyId);
    } catch (error) {
      this.metrics.storageCall(operation, (performance.now() - started) / 1000, error);
      throw error;
    }
    this.metrics.storageCall(operation, (performance.now() - started) / 1000);
    if (typeof changed !== 'boolean') {
      throw new TypeError(`${nameOf(this.storage)}.${operation}() resolved ${describeError(changed)}; a SessionStorage must resolve a boolean`);
    }
    if (changed && !this.storageAnnounces) await this.notifier.notify(new SessionEvent(type, sessionId, authKeyId));
    return changed;
  }

  /** What a storage that announces transitions itself gets: the notifier, with every announcement counted for drain(). */
  private createSink(): SessionTransitionSink {
    return {
      logger: this.notifier.logger,
      announce: (event) => {
        const settling = this.notifier.notify(event);
        if (settling !== undefined) this.inFlight.track(settling);
        return settling;
      },
      eventsMissed: (notice) => {
        const settling = this.notifier.notifyEventsMissed(notice);
        if (settling !== undefined) this.inFlight.track(settling);
      },
      lookupFailed: (error) => this.metrics.lookupFailed(error),
    };
  }
}
