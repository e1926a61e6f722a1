import { InMemorySessionStorage, SessionEventsMissed, SessionSubject, type SessionObserver, type SessionStorage } from 'nestjs-mtproto-sessions';
import { EventLog } from '../../support/event-log';
import { within } from '../../support/wait-until';
import { PlainStorage, SinkStorage, ThrowingLogger } from './fixtures';

/** An observer named in the logs by its own toString(). */
function named(name: string, observer: SessionObserver): SessionObserver {
  return Object.assign(observer, { toString: () => name });
}

/** Long enough that a test waiting for it would time out: what settles here settles without the bound. */
const NEVER = 60_000;

// No path of the subject can be broken by a logger that throws: reports are best effort.
describe('SessionSubject with a logger that throws', () => {
  const notice = new SessionEventsMissed(undefined, '1-0', 'elsewhere');

  it('missed events: the sink does not throw, every observer hears the notice, and drain() settles', async () => {
    const logger = new ThrowingLogger();
    const storage = new SinkStorage();
    const subject = new SessionSubject(storage, { logger, observerTimeout: NEVER });
    const first = new EventLog();
    const last = new EventLog();
    subject.subscribe(first);
    subject.subscribe(named('Thrower', { update: () => undefined, eventsMissed: () => { throw new Error('rebuild threw'); } }));
    subject.subscribe(named('Rejecter', { update: () => undefined, eventsMissed: () => Promise.reject(new Error('rebuild failed')) }));
    subject.subscribe(last);

    expect(() => storage.sink!.eventsMissed(notice)).not.toThrow();
    expect(first.missed).toEqual([notice]);
    expect(last.missed).toEqual([notice]);
    await within(subject.drain(), 'drain() once the rejection is reported', 5000);
    expect(logger.warnings).toEqual([expect.stringContaining('Session events were missed')]);
    expect(logger.errors).toEqual([
      expect.stringMatching(/Thrower failed on missed events: rebuild threw/),
      expect.stringMatching(/Rejecter failed on missed events: rebuild failed/),
    ]);
  });

  it('missed events: a logger whose error() alone throws stops neither the other observers nor drain()', async () => {
    const logger = new ThrowingLogger(['error']);
    const storage = new SinkStorage();
    const subject = new SessionSubject(storage, { logger, observerTimeout: NEVER });
    const last = new EventLog();
    subject.subscribe(named('Thrower', { update: () => undefined, eventsMissed: () => { throw new Error('rebuild threw'); } }));
    subject.subscribe(named('Rejecter', { update: () => undefined, eventsMissed: () => Promise.reject(new Error('rebuild failed')) }));
    subject.subscribe(last);

    expect(() => storage.sink!.eventsMissed(notice)).not.toThrow();
    expect(last.missed).toEqual([notice]);
    await within(subject.drain(), 'drain() once the rejection is reported', 5000);
    expect(logger.errors).toHaveLength(2);
  });

  it.each<[string, () => SessionStorage]>([
    ['a storage the subject announces for', () => new PlainStorage()],
    ['a self-announcing storage (InMemorySessionStorage)', () => new InMemorySessionStorage()],
  ])('a failing prepareObservers is reported, and the call still resolves true and tells the observers: %s', async (_, makeStorage) => {
    const logger = new ThrowingLogger();
    const prepareObservers = (): boolean => {
      throw new Error('wiring failed');
    };
    const subject = new SessionSubject(makeStorage(), { logger, prepareObservers, observerTimeout: NEVER });
    const log = new EventLog();
    subject.subscribe(log);
    await expect(subject.createSession(1n)).resolves.toBe(true);
    expect(log.lines).toEqual(['created:1']);
    expect(logger.errors).toEqual([expect.stringContaining('Preparing session observers failed')]);
  });

  it('a hung observer is still given up on at observerTimeout', async () => {
    const logger = new ThrowingLogger();
    const subject = new SessionSubject(new PlainStorage(), { logger, observerTimeout: 20 });
    subject.subscribe(named('Hung', { update: () => new Promise<void>(() => undefined) }));
    await expect(within(subject.createSession(1n), 'createSession past observerTimeout', 5000)).resolves.toBe(true);
    expect(logger.errors).toEqual([expect.stringMatching(/Hung did not settle 'created' of session 1 within 20 ms/)]);
  });

  it('the logger a self-announcing storage is given never throws either', () => {
    const logger = new ThrowingLogger();
    const storage = new SinkStorage();
    new SessionSubject(storage, { logger });
    expect(() => storage.sink!.logger.error('a storage failure', 'its stack')).not.toThrow();
    expect(() => storage.sink!.logger.warn('a storage warning')).not.toThrow();
    expect(logger.entries.map(({ level, message, context }) => [level, message, context])).toEqual([
      ['error', 'a storage failure', 'its stack'],
      ['warn', 'a storage warning', undefined],
    ]);
  });
});
