import { nameOf } from './name-of.js';
import type { SessionEvent, SessionEventsMissed } from './session-event.js';
import { neverThrowing, type SessionLogger } from './session-logger.js';
import type { SessionMetrics } from './session-metrics.js';
import type { SessionObserver } from './session-observer.js';
import { describeError, toError } from './to-error.js';

/** What observers are told: an event, or a notice that events were missed. */
export type Notification = SessionEvent | SessionEventsMissed;

/**
 * Reports what goes wrong while observers are notified, to the logger and to
 * the metrics. Never throws, whatever the logger does: a report must not stop
 * the other observers or the settling of a call.
 */
export class ObserverReporter {
  /** The logger, made never to throw; storages get this one too. */
  readonly logger: SessionLogger;

  constructor(
    logger: SessionLogger,
    private readonly metrics: SessionMetrics,
    /** The observer bound, in ms, for the messages. */
    private readonly observerTimeout: number,
  ) {
    this.logger = neverThrowing(logger);
  }

  /** An observer threw, or rejected while it was still waited for. */
  failed(observer: SessionObserver, about: Notification, error: unknown): void {
    const name = nameOf(observer);
    this.metrics.observerFailed(name, 'error');
    const cause = toError(error);
    this.logger.error(`Session observer ${name} failed on ${describe(about)}: ${cause.message}`, cause.stack);
  }

  /** An observer that did not settle within observerTimeout: a failure, and no longer waited for. */
  late(observer: SessionObserver, about: Notification): void {
    const name = nameOf(observer);
    this.metrics.observerFailed(name, 'timeout');
    this.logger.error(
      `Session observer ${name} did not settle ${describe(about)} within ${this.observerTimeout} ms (observerTimeout); no longer waiting for it, and ignoring its late result`,
    );
  }

  /** A storage gave notice that events were missed, before observers are told. */
  eventsMissed(notice: SessionEventsMissed): void {
    this.metrics.eventsMissed();
    this.logger.warn(`Session events were missed: ${describeError(notice)}`);
  }

  /** Subscribing lazily discovered observers failed; notifications go on without them. */
  prepareFailed(error: unknown): void {
    this.logger.error(`Preparing session observers failed: ${describeError(error)}`, toError(error).stack);
  }
}

function describe(about: Notification): string {
  // Not instanceof: a storage may announce plain objects, or come from the other copy of a dual package.
  const event = about as Partial<SessionEvent>;
  if (typeof event.type !== 'string') return 'missed events';
  const scope = event.authKeyId === undefined ? '' : ` (auth key ${event.authKeyId})`;
  return `'${event.type}' of session ${event.sessionId}${scope}`;
}
