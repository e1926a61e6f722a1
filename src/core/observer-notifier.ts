import { CoarseTimer } from './coarse-timer.js';
import { nameOf } from './name-of.js';
import { ObserverCountdown } from './observer-countdown.js';
import { ObserverReporter, type Notification } from './observer-reporter.js';
import type { SessionEvent, SessionEventsMissed } from './session-event.js';
import type { SessionLogger } from './session-logger.js';
import type { SessionMetrics } from './session-metrics.js';
import type { SessionObserver } from './session-observer.js';

/** An event announced while another was being delivered, waiting for its turn. */
interface QueuedEvent {
  readonly event: SessionEvent;
  /** The observers subscribed when it was announced. */
  readonly observers: readonly SessionObserver[];
  readonly resolve: (settling: Promise<void> | undefined) => void;
}

/**
 * Tells the subscribed observers of events and of missed events.
 *
 * Every observer is called at once, in order of subscription, without waiting
 * for one before calling the next, and its failure is isolated and reported.
 * A synchronous observer costs no promise: when all are synchronous, a
 * notification returns nothing. Otherwise it returns one promise, settled by
 * an {@link ObserverCountdown} once every returned promise has settled or
 * `observerTimeout` has passed, that never rejects.
 *
 * An event announced while observers are being called (an observer that
 * creates or destroys a session from inside `update()`) waits until every
 * observer has been called with the current one, so each observer hears a
 * session's events in the order of its transitions. It waits for the calls,
 * not for their promises to settle: an observer that awaits the transition it
 * caused would otherwise wait for itself.
 */
export class ObserverNotifier {
  /** Replaced, never mutated, so a notification can hold the set as it was at the transition. */
  private observers: readonly SessionObserver[] = [];
  private prepareObservers: (() => boolean) | undefined;
  private readonly reporter: ObserverReporter;
  private readonly timer: CoarseTimer<ObserverCountdown>;
  /** Set while observers are being called, so that an event announced from inside one waits its turn. */
  private dispatching = false;
  private queued: QueuedEvent[] | undefined;

  constructor(
    logger: SessionLogger,
    observerTimeout: number,
    private readonly metrics: SessionMetrics,
    prepareObservers: (() => boolean) | undefined,
  ) {
    this.reporter = new ObserverReporter(logger, metrics, observerTimeout);
    this.timer = new CoarseTimer(observerTimeout);
    this.prepareObservers = prepareObservers;
  }

  /** The logger, made never to throw. */
  get logger(): SessionLogger {
    return this.reporter.logger;
  }

  /** Adds an observer to every later notification; throws a `TypeError` for one without `update()`. */
  subscribe(observer: SessionObserver): void {
    if (typeof (observer as Partial<SessionObserver> | null)?.update !== 'function') {
      throw new TypeError(`A session observer needs an update(event) method; got ${nameOf(observer)}`);
    }
    if (!this.observers.includes(observer)) this.observers = [...this.observers, observer];
  }

  /** Leaves an observer out of every later notification; returns whether it was subscribed. */
  unsubscribe(observer: SessionObserver): boolean {
    const remaining = this.observers.filter((subscribed) => subscribed !== observer);
    if (remaining.length === this.observers.length) return false;
    this.observers = remaining;
    return true;
  }

  /** Tells every observer of `event`; returns a promise that they have settled, or nothing when all did at once. */
  notify(event: SessionEvent): Promise<void> | undefined {
    this.metrics.transition(event);
    if (this.prepareObservers !== undefined) this.runPrepareObservers();
    if (this.dispatching) return this.enqueue(event);
    this.dispatching = true;
    try {
      const settling = this.deliver(event, this.observers, false);
      if (this.queued !== undefined) this.deliverQueued();
      return settling;
    } finally {
      this.dispatching = false;
    }
  }

  /** Tells every observer with an `eventsMissed()` of `notice`; returns a promise that they have settled, or nothing. */
  notifyEventsMissed(notice: SessionEventsMissed): Promise<void> | undefined {
    this.reporter.eventsMissed(notice);
    return this.deliver(notice, this.observers, true);
  }

  /** Calls each observer's `update(about)`, or its `eventsMissed(about)` when `missed`, and counts down the promises returned. */
  private deliver(about: Notification, observers: readonly SessionObserver[], missed: boolean): Promise<void> | undefined {
    // No closure in this loop: a synchronous observer costs a call and a check, nothing more.
    let countdown: ObserverCountdown | undefined;
    for (let i = 0; i < observers.length; i++) {
      const observer = observers[i]!;
      try {
        let result: unknown;
        if (!missed) result = observer.update(about as SessionEvent);
        else if (typeof observer.eventsMissed === 'function') result = observer.eventsMissed(about as SessionEventsMissed);
        else continue;
        if (isPromiseLike(result)) (countdown ??= new ObserverCountdown(this.timer, this.reporter, about)).add(observer, result);
      } catch (error) {
        // The observer threw, or reading its result's `then` did, or adopting it did.
        this.reporter.failed(observer, about, error);
      }
    }
    return countdown?.start();
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
      next.resolve(this.deliver(next.event, next.observers, false));
    }
    this.queued = undefined;
  }

  private runPrepareObservers(): void {
    try {
      if (this.prepareObservers?.()) this.prepareObservers = undefined;
    } catch (error) {
      // The storage has changed already; failing the call would misreport it.
      this.prepareObservers = undefined;
      this.reporter.prepareFailed(error);
    }
  }
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | undefined)?.then === 'function';
}
