import { InMemorySessionStorage, SessionSubject, type SessionObserver } from 'nestjs-mtproto-sessions';
import { stateOf } from '../../support/promise-state';
import type { RecordingLogger } from '../../support/recording-logger';
import { freshSubject, GatedObserver, KEY_A, KEY_B, RecordingObserver, RejectingObserver, ThrowingObserver } from './fixtures';

// SessionSubject: waiting for observers, and observers that fail.
describe('SessionSubject', () => {
  let storage: InMemorySessionStorage;
  let logger: RecordingLogger;
  let subject: SessionSubject;

  beforeEach(() => {
    ({ storage, logger, subject } = freshSubject());
  });

  describe('waiting for observers', () => {
    it('createSession resolves only after an async observer has settled', async () => {
      const observer = new GatedObserver();
      subject.subscribe(observer);
      const creating = subject.createSession(1n);
      await observer.called.promise;
      expect(await stateOf(creating)).toBe('pending');
      observer.gate.resolve();
      await expect(creating).resolves.toBe(true);
    });

    it('destroySession resolves only after an async observer has settled', async () => {
      await subject.createSession(1n);
      const observer = new GatedObserver();
      subject.subscribe(observer);
      const destroying = subject.destroySession(1n);
      await observer.called.promise;
      expect(await stateOf(destroying)).toBe('pending');
      observer.gate.resolve();
      await expect(destroying).resolves.toBe(true);
    });

    it('waits for every async observer, not only the first to settle', async () => {
      const first = new GatedObserver();
      const second = new GatedObserver();
      subject.subscribe(first);
      subject.subscribe(second);
      const creating = subject.createSession(1n);
      await Promise.all([first.called.promise, second.called.promise]);
      first.gate.resolve();
      expect(await stateOf(creating)).toBe('pending');
      second.gate.resolve();
      await expect(creating).resolves.toBe(true);
    });

    it('calls the observers of one event concurrently', async () => {
      const a = new GatedObserver();
      const b = new RecordingObserver();
      subject.subscribe(a);
      subject.subscribe(b);
      const creating = subject.createSession(1n);
      await a.called.promise;
      // A is still pending; a sequential loop would not have reached B yet.
      expect(b.events).toHaveLength(1);
      expect(await stateOf(creating)).toBe('pending');
      a.gate.resolve();
      await expect(creating).resolves.toBe(true);
    });

    it('calls a later async observer while an earlier one is pending', async () => {
      const a = new GatedObserver();
      const b = new GatedObserver();
      subject.subscribe(a);
      subject.subscribe(b);
      const creating = subject.createSession(1n);
      // Both are called although neither has settled.
      await Promise.all([a.called.promise, b.called.promise]);
      b.gate.resolve();
      a.gate.resolve();
      await expect(creating).resolves.toBe(true);
    });
  });


  describe('failing observers', () => {
    it('a throwing, a rejecting and a slow observer do not stop the others nor undo the creation', async () => {
      const before = new RecordingObserver();
      const slow = new GatedObserver();
      const after = new RecordingObserver();
      subject.subscribe(before);
      subject.subscribe(new ThrowingObserver());
      subject.subscribe(new RejectingObserver());
      subject.subscribe(slow);
      subject.subscribe(after);

      const creating = subject.createSession(10n, KEY_A);
      await slow.called.promise;
      expect(before.events).toHaveLength(1);
      expect(after.events).toHaveLength(1);
      await expect(storage.hasSession(10n, KEY_A)).resolves.toBe(true);
      expect(await stateOf(creating)).toBe('pending');

      slow.gate.resolve();
      await expect(creating).resolves.toBe(true);
      await expect(subject.hasSession(10n, KEY_A)).resolves.toBe(true);

      expect(logger.errors).toHaveLength(2);
      const messages = logger.errors;
      expect(messages.some((m) => m.includes('ThrowingObserver') && m.includes('sync boom'))).toBe(true);
      expect(messages.some((m) => m.includes('RejectingObserver') && m.includes('async boom'))).toBe(true);
      for (const { message, context: stack } of logger.entries.filter((entry) => entry.level === 'error')) {
        expect(message).toContain('10');
        expect(typeof stack).toBe('string');
      }
    });

    it('a failing observer does not undo a destruction', async () => {
      await subject.createSession(10n);
      const recording = new RecordingObserver();
      subject.subscribe(new ThrowingObserver());
      subject.subscribe(new RejectingObserver());
      subject.subscribe(recording);
      await expect(subject.destroySession(10n)).resolves.toBe(true);
      await expect(storage.hasSession(10n)).resolves.toBe(false);
      expect(recording.events.map((e) => e.type)).toEqual(['destroyed']);
      expect(logger.errors).toHaveLength(2);
    });

    it('an observer that rejects after a pending wait is logged and the call still resolves true', async () => {
      const observer = new GatedObserver();
      subject.subscribe(observer);
      const creating = subject.createSession(1n);
      await observer.called.promise;
      observer.gate.reject(new Error('late failure'));
      await expect(creating).resolves.toBe(true);
      expect(logger.errors).toHaveLength(1);
      expect(logger.errors[0]).toEqual(expect.stringContaining('GatedObserver'));
      expect(logger.errors[0]).toEqual(expect.stringContaining('late failure'));
    });

    it('an observer that rejects with a non-Error value is logged too', async () => {
      class StringRejecter implements SessionObserver {
        update(): Promise<void> {
          return Promise.reject('plain string reason');
        }
      }
      subject.subscribe(new StringRejecter());
      await expect(subject.createSession(1n)).resolves.toBe(true);
      expect(logger.errors).toHaveLength(1);
      expect(logger.errors[0]).toEqual(expect.stringContaining('StringRejecter'));
      expect(logger.errors[0]).toEqual(expect.stringContaining('plain string reason'));
    });

    it('an observer that throws a value with no text (a null-prototype object) is logged with what it was', async () => {
      class HostileThrower implements SessionObserver {
        update(): void {
          throw Object.assign(Object.create(null) as object, { code: 'E_HOSTILE' });
        }
      }
      subject.subscribe(new HostileThrower());
      await expect(subject.createSession(1n)).resolves.toBe(true);
      expect(logger.errors).toHaveLength(1);
      expect(logger.errors[0]).toEqual(expect.stringContaining('HostileThrower'));
      expect(logger.errors[0]).toEqual(expect.stringMatching(/null prototype.*E_HOSTILE/));
    });

    it("names an observer with its own toString() by it", async () => {
      class AckQueueCleaner implements SessionObserver {
        update(): void {
          throw new Error('oops');
        }
        toString(): string {
          return 'ack-queue cleaner #3';
        }
      }
      subject.subscribe(new AckQueueCleaner());
      await expect(subject.createSession(1n)).resolves.toBe(true);
      expect(logger.errors).toHaveLength(1);
      expect(logger.errors[0]).toEqual(expect.stringContaining('ack-queue cleaner #3'));
    });

    it('falls back to the class name when toString() itself throws', async () => {
      class BadToString implements SessionObserver {
        update(): void {
          throw new Error('oops');
        }
        toString(): string {
          throw new Error('no name');
        }
      }
      subject.subscribe(new BadToString());
      await expect(subject.createSession(1n)).resolves.toBe(true);
      expect(logger.errors).toHaveLength(1);
      expect(logger.errors[0]).toEqual(expect.stringContaining('BadToString'));
    });

    it('names the auth key of a scoped session in the log', async () => {
      subject.subscribe(new ThrowingObserver());
      await subject.createSession(1n, KEY_B);
      expect(logger.errors[0]).toEqual(expect.stringContaining(String(KEY_B)));
    });
  });

});
