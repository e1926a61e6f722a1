import { SessionEvent, SessionSubject, type SessionObserver } from 'nestjs-mtproto-sessions';
import { INT64_MIN } from '../../../src/core/session-id';
import type { RecordingLogger } from '../../support/recording-logger';
import { freshSubject, KEY_A, KEY_B, RecordingObserver } from './fixtures';

// SessionSubject: what observers are told, the events, subscribing.
describe('SessionSubject', () => {
  let logger: RecordingLogger;
  let subject: SessionSubject;

  beforeEach(() => {
    ({ logger, subject } = freshSubject());
  });

  describe('notifications', () => {
    it('notifies observers of a real creation and a real destruction, once each', async () => {
      const observer = new RecordingObserver();
      subject.subscribe(observer);
      await subject.createSession(5n);
      await subject.destroySession(5n);
      expect(observer.events.map((e) => [e.type, e.sessionId])).toEqual([
        ['created', 5n],
        ['destroyed', 5n],
      ]);
      expect(logger.errors).toEqual([]);
    });

    it('notifies no one when creating an existing session, destroying a missing one, or checking one', async () => {
      const observer = new RecordingObserver();
      await subject.createSession(5n);
      subject.subscribe(observer);
      await expect(subject.createSession(5n)).resolves.toBe(false);
      await expect(subject.destroySession(6n)).resolves.toBe(false);
      await expect(subject.destroySession(5n, KEY_A)).resolves.toBe(false);
      await expect(subject.hasSession(5n)).resolves.toBe(true);
      await expect(subject.hasSession(6n)).resolves.toBe(false);
      expect(observer.events).toEqual([]);
    });

    it('notifies every subscribed observer', async () => {
      const observers = [new RecordingObserver(), new RecordingObserver(), new RecordingObserver()];
      for (const observer of observers) subject.subscribe(observer);
      await subject.createSession(9n);
      for (const observer of observers) expect(observer.events.map((e) => e.sessionId)).toEqual([9n]);
    });

    it('announces a session created by 50 concurrent calls exactly once', async () => {
      const observer = new RecordingObserver();
      subject.subscribe(observer);
      const results = await Promise.all(Array.from({ length: 50 }, () => subject.createSession(77n, KEY_A)));
      expect(results.filter((created) => created)).toHaveLength(1);
      expect(observer.events).toHaveLength(1);
      expect(observer.events[0]).toMatchObject({ type: 'created', sessionId: 77n, authKeyId: KEY_A });
    });

    it('announces a session destroyed by 50 concurrent calls exactly once', async () => {
      await subject.createSession(77n);
      const observer = new RecordingObserver();
      subject.subscribe(observer);
      const results = await Promise.all(Array.from({ length: 50 }, () => subject.destroySession(77n)));
      expect(results.filter((destroyed) => destroyed)).toHaveLength(1);
      expect(observer.events.map((e) => e.type)).toEqual(['destroyed']);
    });
  });


  describe('events', () => {
    it('carries type, sessionId and authKeyId for a scoped session', async () => {
      const observer = new RecordingObserver();
      subject.subscribe(observer);
      await subject.createSession(INT64_MIN, KEY_A);
      await subject.destroySession(INT64_MIN, KEY_A);
      const [created, destroyed] = observer.events;
      expect(created).toBeInstanceOf(SessionEvent);
      expect(created.type).toBe('created');
      expect(created.sessionId).toBe(INT64_MIN);
      expect(created.authKeyId).toBe(KEY_A);
      expect(destroyed.type).toBe('destroyed');
      expect(destroyed.sessionId).toBe(INT64_MIN);
      expect(destroyed.authKeyId).toBe(KEY_A);
      expect(typeof created.sessionId).toBe('bigint');
      expect(typeof created.authKeyId).toBe('bigint');
    });

    it('carries authKeyId 0n as a scope (not dropped as falsy)', async () => {
      const observer = new RecordingObserver();
      subject.subscribe(observer);
      await subject.createSession(1n, 0n);
      expect('authKeyId' in observer.events[0]).toBe(true);
      expect(observer.events[0].authKeyId).toBe(0n);
    });

    it('has no authKeyId property at all for an unscoped session', async () => {
      const observer = new RecordingObserver();
      subject.subscribe(observer);
      await subject.createSession(2n);
      const [event] = observer.events;
      expect(event.type).toBe('created');
      expect(event.sessionId).toBe(2n);
      expect(event.authKeyId).toBeUndefined();
      expect('authKeyId' in event).toBe(false);
      // The in-memory storage announces its transitions itself, naming itself as their origin.
      expect(Object.keys(event).sort()).toEqual(['origin', 'sessionId', 'type']);
    });

    it('gives every observer of one transition the same event', async () => {
      const first = new RecordingObserver();
      const second = new RecordingObserver();
      subject.subscribe(first);
      subject.subscribe(second);
      await subject.createSession(3n, KEY_B);
      expect(first.events[0]).toBe(second.events[0]);
    });
  });


  describe('SessionEvent', () => {
    it('has no authKeyId property when constructed without one', () => {
      const event = new SessionEvent('destroyed', 1n);
      expect('authKeyId' in event).toBe(false);
      expect(Object.prototype.hasOwnProperty.call(event, 'authKeyId')).toBe(false);
      expect(JSON.stringify(Object.keys(event))).toBe('["type","sessionId","reason"]');
    });

    it('gives destroyed events a reason, explicit destruction by default, and created events none', () => {
      expect(new SessionEvent('destroyed', 1n).reason).toBe('destroyed');
      expect(new SessionEvent('destroyed', 1n, undefined, { reason: 'expired', origin: 'i-1' })).toMatchObject({ reason: 'expired', origin: 'i-1' });
      expect('reason' in new SessionEvent('created', 1n, undefined, { reason: 'expired' })).toBe(false);
      expect('origin' in new SessionEvent('created', 1n)).toBe(false);
    });

    it('has the authKeyId it was constructed with', () => {
      const event = new SessionEvent('created', 1n, KEY_A);
      expect(event).toMatchObject({ type: 'created', sessionId: 1n, authKeyId: KEY_A });
    });
  });


  describe('subscribe / unsubscribe', () => {
    it('subscribe returns a function that unsubscribes the observer', async () => {
      const observer = new RecordingObserver();
      const unsubscribe = subject.subscribe(observer);
      expect(typeof unsubscribe).toBe('function');
      await subject.createSession(1n);
      unsubscribe();
      await subject.createSession(2n);
      await subject.destroySession(1n);
      expect(observer.events.map((e) => e.sessionId)).toEqual([1n]);
      expect(subject.unsubscribe(observer)).toBe(false);
    });

    it('the returned function leaves other observers subscribed and can be called twice', async () => {
      const kept = new RecordingObserver();
      const dropped = new RecordingObserver();
      subject.subscribe(kept);
      const unsubscribe = subject.subscribe(dropped);
      unsubscribe();
      expect(() => unsubscribe()).not.toThrow();
      await subject.createSession(1n);
      expect(kept.events).toHaveLength(1);
      expect(dropped.events).toHaveLength(0);
    });

    it('unsubscribe(observer) stops notifications and returns whether it was subscribed', async () => {
      const observer = new RecordingObserver();
      expect(subject.unsubscribe(observer)).toBe(false);
      subject.subscribe(observer);
      expect(subject.unsubscribe(observer)).toBe(true);
      expect(subject.unsubscribe(observer)).toBe(false);
      await subject.createSession(1n);
      expect(observer.events).toEqual([]);
    });

    it('unsubscribing one observer does not affect another', async () => {
      const a = new RecordingObserver();
      const b = new RecordingObserver();
      subject.subscribe(a);
      subject.subscribe(b);
      expect(subject.unsubscribe(a)).toBe(true);
      await subject.createSession(1n);
      expect(a.events).toHaveLength(0);
      expect(b.events).toHaveLength(1);
    });

    it('subscribing the same observer twice notifies it once, and one unsubscribe removes it', async () => {
      const observer = new RecordingObserver();
      subject.subscribe(observer);
      subject.subscribe(observer);
      await subject.createSession(1n);
      expect(observer.events).toHaveLength(1);
      expect(subject.unsubscribe(observer)).toBe(true);
      await subject.createSession(2n);
      expect(observer.events).toHaveLength(1);
    });

    it('an observer can be subscribed again after unsubscribing', async () => {
      const observer = new RecordingObserver();
      subject.subscribe(observer)();
      subject.subscribe(observer);
      await subject.createSession(1n);
      expect(observer.events).toHaveLength(1);
    });

    it.each<[string, unknown]>([
      ['an object without update', {}],
      ['an object whose update is not a function', { update: 'nope' }],
      ['null', null],
      ['undefined', undefined],
      ['a function', () => undefined],
    ])('rejects %s with a TypeError and subscribes nothing', async (_label, bad) => {
      expect(() => subject.subscribe(bad as SessionObserver)).toThrow(TypeError);
      // The subject still works, with nothing broken subscribed.
      await expect(subject.createSession(1n)).resolves.toBe(true);
      expect(logger.errors).toEqual([]);
    });

    it('the TypeError for a bad observer says an update method is needed', () => {
      expect(() => subject.subscribe({} as SessionObserver)).toThrow(/update/);
    });
  });

});
