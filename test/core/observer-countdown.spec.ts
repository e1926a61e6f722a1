import { SessionEvent, SessionEventsMissed, type SessionObserver } from 'nestjs-mtproto-sessions';
import { CoarseTimer } from '../../src/core/coarse-timer';
import { ObserverCountdown } from '../../src/core/observer-countdown';
import { ObserverReporter } from '../../src/core/observer-reporter';
import { SessionMetrics } from '../../src/core/session-metrics';
import { deferred } from '../support/deferred';
import { RecordingLogger } from '../support/recording-logger';

const TIMEOUT = 1000;

/** An observer named in the logs by its own toString(). */
function named(name: string): SessionObserver {
  return Object.assign({ update: () => undefined }, { toString: () => name });
}

/** Records whether a promise has settled; read after letting fake time (and its microtasks) run. */
function track(promise: Promise<void> | undefined): { settled: boolean } {
  const seen = { settled: false };
  void promise?.then(() => (seen.settled = true));
  return seen;
}

describe('ObserverCountdown', () => {
  let logger: RecordingLogger;
  let metrics: SessionMetrics;
  let reporter: ObserverReporter;
  let timer: CoarseTimer<ObserverCountdown>;
  const event = new SessionEvent('created', 5n, 9n);

  beforeEach(() => {
    jest.useFakeTimers();
    logger = new RecordingLogger();
    metrics = new SessionMetrics({ createSession: async () => true, hasSession: async () => true, destroySession: async () => true }, undefined);
    reporter = new ObserverReporter(logger, metrics, TIMEOUT);
    timer = new CoarseTimer(TIMEOUT);
  });
  afterEach(() => {
    metrics.dispose();
    jest.clearAllTimers();
    jest.useRealTimers();
  });

  it('counts nothing: start() returns nothing and watches nothing', () => {
    expect(new ObserverCountdown(timer, reporter, event).start()).toBeUndefined();
    expect(jest.getTimerCount()).toBe(0);
  });

  it('settles once every counted observer has, leaving the timer', async () => {
    const first = deferred();
    const second = deferred();
    const countdown = new ObserverCountdown(timer, reporter, event);
    countdown.add(named('First'), first.promise);
    countdown.add(named('Second'), second.promise);
    const done = track(countdown.start());
    second.resolve();
    await jest.advanceTimersByTimeAsync(10);
    expect(done.settled).toBe(false);
    first.resolve();
    await jest.advanceTimersByTimeAsync(0);
    expect(done.settled).toBe(true);
    await jest.advanceTimersByTimeAsync(TIMEOUT);
    expect(jest.getTimerCount()).toBe(0);
    expect(logger.entries).toEqual([]);
  });

  it('reports a rejection while waited for, naming the observer and the event, and still settles', async () => {
    const countdown = new ObserverCountdown(timer, reporter, event);
    countdown.add(named('Rejecter'), Promise.reject(new Error('boom')));
    const done = track(countdown.start());
    await jest.advanceTimersByTimeAsync(0);
    expect(done.settled).toBe(true);
    expect(logger.errors).toEqual(["Session observer Rejecter failed on 'created' of session 5 (auth key 9): boom"]);
    expect(metrics.observerFailures.get('error|Rejecter')).toBeDefined();
  });

  it('at the deadline, reports each observer still pending as late, settles, and ignores what they do later', async () => {
    const hung = deferred();
    const quick = deferred();
    const countdown = new ObserverCountdown(timer, reporter, new SessionEventsMissed(undefined, '1-0', 'elsewhere'));
    countdown.add(named('Hung'), hung.promise);
    countdown.add(named('Quick'), quick.promise);
    const done = track(countdown.start());
    quick.resolve();
    await jest.advanceTimersByTimeAsync(TIMEOUT - 1);
    expect(done.settled).toBe(false);
    await jest.advanceTimersByTimeAsync(TIMEOUT / 4 + 1);
    expect(done.settled).toBe(true);
    expect(logger.errors).toEqual([
      'Session observer Hung did not settle missed events within 1000 ms (observerTimeout); no longer waiting for it, and ignoring its late result',
    ]);
    hung.reject(new Error('too late'));
    await hung.promise.catch(() => undefined);
    expect(logger.errors).toHaveLength(1);
  });
});
