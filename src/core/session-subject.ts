import { ObserverDeadlines, type DeadlineEntry, type Expirable } from './observer-deadlines.js';
import { assertKnownOptions, describeOptionValue } from './known-options.js';
import { SessionMetrics } from './session-metrics.js';
import { SessionEvent, type SessionEventsMissed, type SessionEventType } from './session-event.js';
import { checkIds, type AuthKeyId, type SessionId } from './session-id.js';
import { assertLogger, type SessionLogger } from './session-logger.js';
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
  /**
   * How long, in ms, a call, `drain()` and `close()` wait for an observer to
   * settle its handling of one event; 5000 by default. One that has not
   * settled by then is logged by name as a failure and no longer waited for;
   * whatever it does later is ignored.
   */
  observerTimeout?: number;
}

/**
 * Long enough for an observer that does its own I/O within the usual client
 * timeouts (a database round trip, a Redis call bounded at 2 s), short enough
 * that a hung one delays a client's request by seconds, not minutes, and that
 * shutdown fits well inside a 30 s grace period (Kubernetes' default).
 */
export const DEFAULT_OBSERVER_TIMEOUT = 5000;
/** setInterval's largest delay; a longer bound would fire at once. */
const MAX_OBSERVER_TIMEOUT = 2 ** 31 - 1;

/** An event announced while another was being delivered, waiting for its turn. */
interface QueuedEvent {
  readonly event: SessionEvent;
  /** The observers subscribed when it was announced. */
  readonly observers: readonly SessionObserver[];
  readonly resolve: (settling: Promise<void> | undefined) => void;
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
  private readonly deadlines: ObserverDeadlines;
  /** Set while observers are being called, so that an event announced from inside one waits its turn. */
  private dispatching = false;
  private queued: QueuedEvent[] | undefined;
  private readonly metrics: SessionMetrics;

  constructor(
    private readonly storage: SessionStorage,
    options: SessionSubjectOptions = {},
  ) {
    assertSessionStorage(storage, 'The storage given to SessionSubject');
    assertSubjectOptions(options);
    this.logger = options.logger ?? console;
    this.prepareObservers = options.prepareObservers;
    this.deadlines = new ObserverDeadlines(options.observerTimeout ?? DEFAULT_OBSERVER_TIMEOUT);
    this.idCheckingHasSession = checksIds(storage.hasSession) ? storage.hasSession : undefined;
    this.storageAnnounces = typeof storage.attach === 'function';
    const origin = (storage as { instanceId?: unknown }).instanceId;
    this.metrics = new SessionMetrics(storage, typeof origin === 'string' ? origin : undefined);
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
    // Counted, not recorded: an observable instrument reports the count when metrics are collected.
    this.metrics.lookups++;
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
    this.closing ??= this.drain().then(() => this.storage.close?.()).finally(() => this.metrics.dispose());
    return this.closing;
  }

  /** Resolves once every transition started so far, and any started meanwhile, has been announced. */
  async drain(): Promise<void> {
    while (this.inFlight > 0) await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
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
    this.track(done);
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
        this.metrics.eventsMissed();
        this.logger.warn(`Session events were missed: ${String(notice)}`);
        this.notifyEventsMissed(notice);
      },
    };
  }

  private notifyEventsMissed(notice: SessionEventsMissed): void {
    let countdown: Countdown | undefined;
    for (const observer of this.observers) {
      if (typeof observer.eventsMissed !== 'function') continue;
      try {
        const result = observer.eventsMissed(notice);
        if (isPromiseLike(result)) {
          const adopted = Promise.resolve(result);
          countdown ??= new Countdown(this.deadlines, (late) => this.reportLate(late, 'missed events'));
          const slot = countdown.add(observer);
          adopted.then(
            () => countdown!.settle(slot),
            (error: unknown) => {
              if (countdown!.awaits(slot)) this.reportMissed(observer, error);
              countdown!.settle(slot);
            },
          );
        }
      } catch (error) {
        this.reportMissed(observer, error);
      }
    }
    const settling = countdown?.start();
    if (settling !== undefined) this.track(settling);
  }

  private track(settling: Promise<unknown>): void {
    this.inFlight++;
    settling.then(this.forgetOne, this.forgetOne);
  }

  private reportMissed(observer: SessionObserver, error: unknown): void {
    this.metrics.observerFailed(nameOf(observer), 'error');
    const cause = toError(error);
    this.logger.error(`Session observer ${nameOf(observer)} failed on missed events: ${cause.message}`, cause.stack);
  }

  /**
   * Calls every observer at once, in order of subscription, without waiting
   * for one before calling the next, and isolates their failures. A synchronous observer costs no
   * promise: when all are synchronous this returns nothing. Otherwise it
   * returns one promise that a countdown settles once every returned promise
   * has, or once `observerTimeout` has passed (no `Promise.all`, no timer per
   * call), and that never rejects.
   *
   * An event announced while observers are being called (an observer that
   * creates or destroys a session from inside `update()`) waits until every
   * observer has been called with the current one, so each observer hears a
   * session's events in the order of its transitions. It waits for the calls,
   * not for their promises to settle: an observer that awaits the transition
   * it caused would otherwise wait for itself.
   */
  private notify(event: SessionEvent): Promise<void> | undefined {
    this.metrics.transition(event);
    if (this.prepareObservers !== undefined) this.runPrepareObservers();
    if (this.dispatching) return this.enqueue(event);
    this.dispatching = true;
    try {
      const settling = this.deliver(event, this.observers);
      if (this.queued !== undefined) this.deliverQueued();
      return settling;
    } finally {
      this.dispatching = false;
    }
  }

  private enqueue(event: SessionEvent): Promise<void> {
    const observers = this.observers;
    return new Promise<void>((resolve) => (this.queued ??= []).push({ event, observers, resolve }));
  }

  private deliverQueued(): void {
    const queued = this.queued!;
    // Delivering may queue more; they join the same list and are delivered in turn.
    for (let i = 0; i < queued.length; i++) {
      const next = queued[i]!;
      next.resolve(this.deliver(next.event, next.observers));
    }
    this.queued = undefined;
  }

  private deliver(event: SessionEvent, observers: readonly SessionObserver[]): Promise<void> | undefined {
    // No closure in this loop: a synchronous observer costs a call and a check, nothing more.
    let countdown: Countdown | undefined;
    for (let i = 0; i < observers.length; i++) {
      const observer = observers[i];
      try {
        const result: unknown = observer.update(event);
        if (isPromiseLike(result)) this.settleLater((countdown ??= this.countdownFor(event)), observer, event, result);
      } catch (error) {
        // update() threw, or reading its result's `then` did.
        this.reportSafely(observer, event, error);
      }
    }
    return countdown?.start();
  }

  private countdownFor(event: SessionEvent): Countdown {
    return new Countdown(this.deadlines, (observer) => this.reportLate(observer, describeEvent(event)));
  }

  /** Counts an observer's pending result into the countdown, reporting its rejection unless it came too late. */
  private settleLater(countdown: Countdown, observer: SessionObserver, event: SessionEvent, result: PromiseLike<void>): void {
    // Promise.resolve adopts a foreign thenable safely: it settles once, and a throwing `then` rejects.
    // It throws only for a native promise whose `constructor` getter throws: then nothing is counted.
    const adopted = Promise.resolve(result);
    const slot = countdown.add(observer);
    adopted.then(
      () => countdown.settle(slot),
      (error: unknown) => {
        if (countdown.awaits(slot)) this.reportSafely(observer, event, error);
        countdown.settle(slot);
      },
    );
  }

  /** An observer that did not settle within observerTimeout: a failure, and no longer waited for. */
  private reportLate(observer: SessionObserver, what: string): void {
    this.metrics.observerFailed(nameOf(observer), 'timeout');
    try {
      this.logger.error(
        `Session observer ${nameOf(observer)} did not settle ${what} within ${this.deadlines.timeout} ms (observerTimeout); no longer waiting for it, and ignoring its late result`,
      );
    } catch {
      // Nowhere left to report to.
    }
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
    this.metrics.observerFailed(nameOf(observer), 'error');
    const cause = toError(error);
    this.logger.error(`Session observer ${nameOf(observer)} failed on ${describeEvent(event)}: ${cause.message}`, cause.stack);
  }
}

function describeEvent(event: SessionEvent): string {
  const scope = event.authKeyId === undefined ? '' : ` (auth key ${event.authKeyId})`;
  return `'${event.type}' of session ${event.sessionId}${scope}`;
}

/** Throws a `TypeError` naming the option unless `options` are {@link SessionSubjectOptions}. */
function assertSubjectOptions(options: unknown): asserts options is SessionSubjectOptions {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`SessionSubject options must be an object; got ${options === null ? 'null' : typeof options}`);
  }
  assertKnownOptions(options, ['logger', 'observerTimeout', 'prepareObservers'], 'SessionSubject');
  const { logger, prepareObservers, observerTimeout } = options as Record<string, unknown>;
  if (logger !== undefined) assertLogger(logger, 'SessionSubject logger');
  if (prepareObservers !== undefined && typeof prepareObservers !== 'function') {
    throw new TypeError(`SessionSubject prepareObservers must be a function; got ${typeof prepareObservers}`);
  }
  if (observerTimeout !== undefined) assertObserverTimeout(observerTimeout, 'SessionSubject observerTimeout (ms)');
}

/** Throws a `TypeError` naming `what` unless `value` is a timeout setInterval can keep: a positive integer up to 2^31 - 1. */
export function assertObserverTimeout(value: unknown, what: string): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0 || value > MAX_OBSERVER_TIMEOUT) {
    throw new TypeError(`${what} must be a positive integer of at most ${MAX_OBSERVER_TIMEOUT}; got ${describeOptionValue(value)}`);
  }
}

/**
 * How notify() waits for the observers that returned a promise, without
 * Promise.all: a count of the pending ones, and one deadline for them all.
 */
class Countdown implements Expirable {
  /** The observers still waited for, by slot; a slot is cleared once its observer settles or times out. */
  private readonly waiting: (SessionObserver | undefined)[] = [];
  private pending = 0;
  private resolve: (() => void) | undefined;
  private entry: DeadlineEntry | undefined;

  constructor(
    private readonly deadlines: ObserverDeadlines,
    private readonly onLate: (observer: SessionObserver) => void,
  ) {}

  add(observer: SessionObserver): number {
    this.pending++;
    return this.waiting.push(observer) - 1;
  }

  /** Whether the observer in `slot` is still waited for (not settled, not timed out). */
  awaits(slot: number): boolean {
    return this.waiting[slot] !== undefined;
  }

  settle(slot: number): void {
    if (this.waiting[slot] === undefined) return;
    this.waiting[slot] = undefined;
    if (--this.pending > 0) return;
    if (this.entry !== undefined) this.deadlines.leave(this.entry);
    this.entry = undefined;
    this.resolve?.();
  }

  /**
   * The promise that settles when the count reaches zero or the deadline
   * passes, or nothing when no count was made. Every count is made before,
   * and every settling happens after, this call.
   */
  start(): Promise<void> | undefined {
    if (this.pending === 0) return undefined;
    return new Promise<void>((resolve) => {
      this.resolve = resolve;
      this.entry = this.deadlines.watch(this);
    });
  }

  expire(): void {
    this.entry = undefined;
    for (let slot = 0; slot < this.waiting.length; slot++) {
      const observer = this.waiting[slot];
      if (observer === undefined) continue;
      this.waiting[slot] = undefined;
      this.onLate(observer);
    }
    this.pending = 0;
    this.resolve?.();
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
