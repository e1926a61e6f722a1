import { InMemorySessionStorage, SessionSubject, type SessionObserver } from 'nestjs-mtproto-sessions';
import { RecordingLogger } from '../../support/recording-logger';
import { RecordingObserver } from './fixtures';

// SessionSubject: the prepareObservers hook.
describe('SessionSubject', () => {
  let logger: RecordingLogger;

  beforeEach(() => {
    logger = new RecordingLogger();
  });

  describe('prepareObservers', () => {
    it('is called before each notification until it returns true, and an observer it subscribes gets that event', async () => {
      const log: string[] = [];
      const late = new RecordingObserver();
      const later = new RecordingObserver();
      const pending = [late, later];
      // Subscribes one more observer per call, and reports completion once none is left.
      const prepareObservers = jest.fn(() => {
        log.push('prepare');
        const next = pending.shift();
        if (next) hooked.subscribe(next);
        return pending.length === 0;
      });
      const early: SessionObserver = {
        update: (event) => {
          log.push(`early:${event.type}:${event.sessionId}`);
        },
      };
      const hooked = new SessionSubject(new InMemorySessionStorage(), { logger, prepareObservers });
      hooked.subscribe(early);

      // Calls that announce nothing do not trigger it.
      await hooked.hasSession(1n);
      await hooked.destroySession(1n);
      expect(prepareObservers).not.toHaveBeenCalled();

      await hooked.createSession(1n);
      expect(log).toEqual(['prepare', 'early:created:1']);
      expect(late.events.map((e) => [e.type, e.sessionId])).toEqual([['created', 1n]]);

      await hooked.createSession(2n);
      expect(prepareObservers).toHaveBeenCalledTimes(2);
      expect(later.events.map((e) => [e.type, e.sessionId])).toEqual([['created', 2n]]);

      // It returned true: never called again.
      await hooked.destroySession(1n);
      expect(prepareObservers).toHaveBeenCalledTimes(2);
      expect(late.events.map((e) => [e.type, e.sessionId])).toEqual([
        ['created', 1n],
        ['created', 2n],
        ['destroyed', 1n],
      ]);
    });

    it('is called once under concurrent first transitions when it completes at once', async () => {
      const prepareObservers = jest.fn(() => true);
      const hooked = new SessionSubject(new InMemorySessionStorage(), { logger, prepareObservers });
      await Promise.all(Array.from({ length: 20 }, (_unused, i) => hooked.createSession(BigInt(i))));
      expect(prepareObservers).toHaveBeenCalledTimes(1);
    });

    it('a throwing prepareObservers is logged once, and the transitions still resolve true and are announced', async () => {
      const observer = new RecordingObserver();
      const prepareObservers = jest.fn((): boolean => {
        throw new Error('wiring failed');
      });
      const hooked = new SessionSubject(new InMemorySessionStorage(), { logger, prepareObservers });
      hooked.subscribe(observer);
      await expect(hooked.createSession(1n)).resolves.toBe(true);
      await expect(hooked.createSession(2n)).resolves.toBe(true);
      await expect(hooked.hasSession(1n)).resolves.toBe(true);
      expect(observer.events).toHaveLength(2);
      expect(prepareObservers).toHaveBeenCalledTimes(1);
      expect(logger.errors).toHaveLength(1);
      expect(logger.errors[0]).toEqual(expect.stringContaining('wiring failed'));
    });
  });

});
