import { SessionEvent, SessionSubject, type SessionObserver, type SessionTransitionSink } from 'nestjs-mtproto-sessions';
import { deferred } from '../../support/deferred';
import { stateOf } from '../../support/promise-state';
import { RecordingLogger } from '../../support/recording-logger';
import { GatedObserver, RecordingObserver, RejectingObserver, SinkStorage, ThrowingLogger, ThrowingObserver } from './fixtures';

// SessionSubject: the notification path a self-announcing storage gets.
describe('SessionSubject', () => {
  let logger: RecordingLogger;

  beforeEach(() => {
    logger = new RecordingLogger();
  });

  describe('notification path (through the sink a self-announcing storage gets)', () => {
    function announcer(...observers: SessionObserver[]): SessionTransitionSink {
      const announcing = new SinkStorage();
      const announcingSubject = new SessionSubject(announcing, { logger });
      for (const observer of observers) announcingSubject.subscribe(observer);
      return announcing.sink!;
    }

    const event = new SessionEvent('created', 7n);

    it('returns nothing when every observer is synchronous, having called them all in order', () => {
      const calls: string[] = [];
      const sink = announcer(
        { update: () => void calls.push('a') },
        new ThrowingObserver(),
        { update: () => void calls.push('c') },
      );
      expect(sink.announce(event)).toBeUndefined();
      expect(calls).toEqual(['a', 'c']);
      expect(logger.errors).toHaveLength(1);
    });

    it('calls every observer, in order of subscription, before any has settled, and settles once all have', async () => {
      const calls: string[] = [];
      const first = new GatedObserver();
      const second = new GatedObserver();
      const sink = announcer(first, { update: () => void calls.push('sync') }, second);
      const settling = sink.announce(event);
      expect(settling).toBeInstanceOf(Promise);
      expect(first.events).toEqual([event]);
      expect(calls).toEqual(['sync']);
      expect(second.events).toEqual([event]);
      second.gate.resolve();
      expect(await stateOf(settling!)).toBe('pending');
      first.gate.resolve();
      expect(await stateOf(settling!)).toBe('fulfilled');
    });

    it('never rejects: rejections and throws are reported per observer, and the promise settles after all', async () => {
      const slow = new GatedObserver();
      const sink = announcer(new RejectingObserver(), new ThrowingObserver(), slow);
      const settling = sink.announce(event)!;
      expect(await stateOf(settling)).toBe('pending');
      slow.gate.reject(new Error('late'));
      await expect(settling).resolves.toBeUndefined();
      const messages = logger.errors;
      expect(messages).toHaveLength(3);
      expect(messages.some((m) => m.includes('RejectingObserver') && m.includes('async boom'))).toBe(true);
      expect(messages.some((m) => m.includes('ThrowingObserver') && m.includes('sync boom'))).toBe(true);
      expect(messages.some((m) => m.includes('GatedObserver') && m.includes('late'))).toBe(true);
    });

    it('adopts foreign thenables: one that calls back twice counts once, one whose then throws is reported', async () => {
      const gate = deferred();
      const twice: SessionObserver = {
        update: () =>
          ({
            then(onFulfilled: () => void, onRejected: (error: unknown) => void) {
              onFulfilled();
              onRejected(new Error('ignored: already settled'));
              onFulfilled();
            },
          }) as unknown as Promise<void>,
      };
      const throwingThen: SessionObserver = {
        update: () =>
          ({
            then() {
              throw new Error('then boom');
            },
          }) as unknown as Promise<void>,
      };
      const slow: SessionObserver = { update: () => gate.promise };
      const settling = announcer(twice, throwingThen, slow).announce(event)!;
      // The thenable that called back twice must not count for the slow observer.
      expect(await stateOf(settling, 3)).toBe('pending');
      gate.resolve();
      await expect(settling).resolves.toBeUndefined();
      expect(logger.errors).toHaveLength(1);
      expect(logger.errors[0]).toEqual(expect.stringContaining('then boom'));
    });

    it("isolates an observer whose result's then getter throws", async () => {
      const after = new RecordingObserver();
      const hostile: SessionObserver = {
        update: () =>
          Object.defineProperty({}, 'then', {
            get() {
              throw new Error('getter boom');
            },
          }) as Promise<void>,
      };
      const sink = announcer(hostile, after);
      expect(sink.announce(event)).toBeUndefined();
      expect(after.events).toEqual([event]);
      expect(logger.errors[0]).toEqual(expect.stringContaining('getter boom'));
    });

    it('isolates an observer whose then getter works when checked and throws when adopted', async () => {
      let reads = 0;
      const fickle: SessionObserver = {
        update: () =>
          Object.defineProperty({}, 'then', {
            get() {
              if (++reads > 1) throw new Error('second read boom');
              return () => undefined;
            },
          }) as Promise<void>,
      };
      const after = new RecordingObserver();
      await expect(announcer(fickle, after).announce(event)).resolves.toBeUndefined();
      expect(after.events).toEqual([event]);
      expect(logger.errors[0]).toEqual(expect.stringContaining('second read boom'));
    });

    it('isolates an observer whose promise cannot be adopted at all, and waits for nothing on its behalf', () => {
      const unadoptable: SessionObserver = {
        update: () => {
          const promise = Promise.resolve();
          Object.defineProperty(promise, 'constructor', {
            get() {
              throw new Error('constructor boom');
            },
          });
          return promise;
        },
      };
      const after = new RecordingObserver();
      expect(announcer(unadoptable, after).announce(event)).toBeUndefined();
      expect(after.events).toEqual([event]);
      expect(logger.errors[0]).toEqual(expect.stringContaining('constructor boom'));
    });

    it('a logger that throws stops neither the other observers nor the settling', async () => {
      const throwingLogger = new ThrowingLogger();
      const after = new RecordingObserver();
      const announcing = new SinkStorage();
      const announcingSubject = new SessionSubject(announcing, { logger: throwingLogger });
      for (const observer of [new ThrowingObserver(), new RejectingObserver(), after]) announcingSubject.subscribe(observer);
      const settling = announcing.sink!.announce(event);
      expect(after.events).toEqual([event]);
      await expect(settling).resolves.toBeUndefined();
      expect(throwingLogger.errors).toHaveLength(2);
    });
  });
});
