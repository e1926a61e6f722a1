import fc from 'fast-check';
import {
  InMemorySessionStorage,
  InvalidSessionIdError,
  SessionEvent,
  SessionSubject,
  type AuthKeyId,
  type SessionId,
  type SessionObserver,
  type SessionStorage,
  type SessionTransitionSink,
} from 'nestjs-mtproto-sessions';
import { deferred, fakeLogger, INT64_MAX, INT64_MIN, modelKey, opsArbitrary, stateOf, type Deferred } from './session-test-helpers';

const KEY_A = 0x0123456789abcdefn;
const KEY_B = -42n;

/** An observer that records every event it gets. */
class RecordingObserver implements SessionObserver {
  readonly events: SessionEvent[] = [];
  update(event: SessionEvent): void {
    this.events.push(event);
  }
}

/**
 * An observer whose update() reports that it was called, then stays pending
 * until the test resolves (or rejects) its gate.
 */
class GatedObserver implements SessionObserver {
  readonly called: Deferred<SessionEvent> = deferred<SessionEvent>();
  readonly gate: Deferred = deferred();
  readonly events: SessionEvent[] = [];
  update(event: SessionEvent): Promise<void> {
    this.events.push(event);
    this.called.resolve(event);
    return this.gate.promise;
  }
}

class ThrowingObserver implements SessionObserver {
  update(): void {
    throw new Error('sync boom');
  }
}

class RejectingObserver implements SessionObserver {
  async update(): Promise<void> {
    throw new Error('async boom');
  }
}

/** Wraps the in-memory storage, recording close() calls. */
class ClosableStorage implements SessionStorage {
  readonly inner = new InMemorySessionStorage();
  closeCalls = 0;
  createSession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
    return this.inner.createSession(sessionId, authKeyId);
  }
  hasSession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
    return this.inner.hasSession(sessionId, authKeyId);
  }
  destroySession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
    return this.inner.destroySession(sessionId, authKeyId);
  }
  count(): Promise<number> {
    return this.inner.count();
  }
  async close(): Promise<void> {
    this.closeCalls++;
  }
}

/** Lets the subject be called with ids of the wrong type. */
type LooseCall = (sessionId: unknown, authKeyId?: unknown) => Promise<boolean>;

describe('SessionSubject', () => {
  let storage: InMemorySessionStorage;
  let logger: ReturnType<typeof fakeLogger>;
  let subject: SessionSubject;

  beforeEach(() => {
    storage = new InMemorySessionStorage();
    logger = fakeLogger();
    subject = new SessionSubject(storage, { logger });
  });

  describe('storage operations', () => {
    it('creates, finds and destroys sessions in the storage it was given', async () => {
      await expect(subject.createSession(1n)).resolves.toBe(true);
      await expect(storage.hasSession(1n)).resolves.toBe(true);
      await expect(subject.hasSession(1n)).resolves.toBe(true);
      await expect(subject.createSession(1n)).resolves.toBe(false);
      await expect(subject.destroySession(1n)).resolves.toBe(true);
      await expect(storage.hasSession(1n)).resolves.toBe(false);
      await expect(subject.hasSession(1n)).resolves.toBe(false);
      await expect(subject.destroySession(1n)).resolves.toBe(false);
    });

    it('scopes by auth key', async () => {
      await expect(subject.createSession(1n, KEY_A)).resolves.toBe(true);
      await expect(subject.createSession(1n, KEY_B)).resolves.toBe(true);
      await expect(subject.createSession(1n)).resolves.toBe(true);
      await expect(subject.destroySession(1n, KEY_A)).resolves.toBe(true);
      await expect(subject.hasSession(1n, KEY_A)).resolves.toBe(false);
      await expect(subject.hasSession(1n, KEY_B)).resolves.toBe(true);
      await expect(subject.hasSession(1n)).resolves.toBe(true);
      await expect(storage.count()).resolves.toBe(2);
    });

    it('refuses to be built without a storage, naming it: the Nest layer chooses the default', () => {
      expect(() => new SessionSubject(undefined as unknown as InMemorySessionStorage, { logger })).toThrow(
        /The storage given to SessionSubject is not a SessionStorage: got undefined/,
      );
      expect(() => new SessionSubject({ createSession: () => Promise.resolve(true) } as unknown as InMemorySessionStorage)).toThrow(
        /it lacks hasSession, destroySession\(\)/,
      );
    });

    it('works without Nest, given a storage', async () => {
      const standalone = new SessionSubject(new InMemorySessionStorage(), { logger });
      const observer = new RecordingObserver();
      standalone.subscribe(observer);
      await expect(standalone.createSession(INT64_MAX)).resolves.toBe(true);
      await expect(standalone.hasSession(INT64_MAX)).resolves.toBe(true);
      await expect(standalone.createSession(INT64_MAX)).resolves.toBe(false);
      expect(observer.events).toHaveLength(1);
      await expect(standalone.close()).resolves.toBeUndefined();
    });
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
      expect(logger.error).not.toHaveBeenCalled();
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
      expect(logger.error).not.toHaveBeenCalled();
    });

    it('the TypeError for a bad observer says an update method is needed', () => {
      expect(() => subject.subscribe({} as SessionObserver)).toThrow(/update/);
    });
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

      expect(logger.error).toHaveBeenCalledTimes(2);
      const messages = logger.error.mock.calls.map(([message]) => message as string);
      expect(messages.some((m) => m.includes('ThrowingObserver') && m.includes('sync boom'))).toBe(true);
      expect(messages.some((m) => m.includes('RejectingObserver') && m.includes('async boom'))).toBe(true);
      for (const [message, stack] of logger.error.mock.calls) {
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
      expect(logger.error).toHaveBeenCalledTimes(2);
    });

    it('an observer that rejects after a pending wait is logged and the call still resolves true', async () => {
      const observer = new GatedObserver();
      subject.subscribe(observer);
      const creating = subject.createSession(1n);
      await observer.called.promise;
      observer.gate.reject(new Error('late failure'));
      await expect(creating).resolves.toBe(true);
      expect(logger.error).toHaveBeenCalledTimes(1);
      expect(logger.error.mock.calls[0][0]).toEqual(expect.stringContaining('GatedObserver'));
      expect(logger.error.mock.calls[0][0]).toEqual(expect.stringContaining('late failure'));
    });

    it('an observer that rejects with a non-Error value is logged too', async () => {
      class StringRejecter implements SessionObserver {
        update(): Promise<void> {
          return Promise.reject('plain string reason');
        }
      }
      subject.subscribe(new StringRejecter());
      await expect(subject.createSession(1n)).resolves.toBe(true);
      expect(logger.error).toHaveBeenCalledTimes(1);
      expect(logger.error.mock.calls[0][0]).toEqual(expect.stringContaining('StringRejecter'));
      expect(logger.error.mock.calls[0][0]).toEqual(expect.stringContaining('plain string reason'));
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
      expect(logger.error).toHaveBeenCalledTimes(1);
      expect(logger.error.mock.calls[0][0]).toEqual(expect.stringContaining('ack-queue cleaner #3'));
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
      expect(logger.error).toHaveBeenCalledTimes(1);
      expect(logger.error.mock.calls[0][0]).toEqual(expect.stringContaining('BadToString'));
    });

    it('names the auth key of a scoped session in the log', async () => {
      subject.subscribe(new ThrowingObserver());
      await subject.createSession(1n, KEY_B);
      expect(logger.error.mock.calls[0][0]).toEqual(expect.stringContaining(String(KEY_B)));
    });
  });

  describe('bad ids', () => {
    const cases: [string, unknown, unknown, 'sessionId' | 'authKeyId'][] = [
      ['the number 1 as session id', 1, undefined, 'sessionId'],
      ['an out-of-range session id', 2n ** 63n, undefined, 'sessionId'],
      ['a string session id', '1', undefined, 'sessionId'],
      ['null as session id', null, undefined, 'sessionId'],
      ['the number 1 as auth key id', 1n, 1, 'authKeyId'],
      ['an out-of-range auth key id', 1n, INT64_MIN - 1n, 'authKeyId'],
      ['a string auth key id', 1n, '1', 'authKeyId'],
    ];
    const methods = ['createSession', 'hasSession', 'destroySession'] as const;

    describe.each(methods)('%s', (method) => {
      it.each(cases)('rejects %s without a synchronous throw, changing nothing and notifying no one', async (_label, sessionId, authKeyId, argument) => {
        await subject.createSession(1n);
        await subject.createSession(1n, 1n);
        const observer = new RecordingObserver();
        subject.subscribe(observer);

        let promise: Promise<boolean> | undefined;
        expect(() => {
          promise = (subject[method].bind(subject) as unknown as LooseCall)(sessionId, authKeyId);
        }).not.toThrow();
        const error = await promise!.then(
          () => undefined,
          (reason: unknown) => reason,
        );
        expect(error).toBeInstanceOf(InvalidSessionIdError);
        expect((error as InvalidSessionIdError).argument).toBe(argument);

        await expect(storage.count()).resolves.toBe(2);
        await expect(storage.hasSession(1n)).resolves.toBe(true);
        await expect(storage.hasSession(1n, 1n)).resolves.toBe(true);
        expect(observer.events).toEqual([]);
        expect(logger.error).not.toHaveBeenCalled();
      });
    });

    it('never reaches the storage with a bad id', async () => {
      const spy = new ClosableStorage();
      const create = jest.spyOn(spy, 'createSession');
      const has = jest.spyOn(spy, 'hasSession');
      const destroy = jest.spyOn(spy, 'destroySession');
      const guarded = new SessionSubject(spy, { logger });
      const loose = guarded as unknown as Record<'createSession' | 'hasSession' | 'destroySession', LooseCall>;
      await expect(loose.createSession(1)).rejects.toBeInstanceOf(InvalidSessionIdError);
      await expect(loose.hasSession(1)).rejects.toBeInstanceOf(InvalidSessionIdError);
      await expect(loose.destroySession(1n, 2 ** 60)).rejects.toBeInstanceOf(InvalidSessionIdError);
      expect(create).not.toHaveBeenCalled();
      expect(has).not.toHaveBeenCalled();
      expect(destroy).not.toHaveBeenCalled();
    });

    it('a rejected bad-id call does not trigger prepareObservers', async () => {
      const prepareObservers = jest.fn(() => true);
      const guarded = new SessionSubject(new InMemorySessionStorage(), { logger, prepareObservers });
      await expect((guarded.createSession as unknown as LooseCall).call(guarded, 1)).rejects.toBeInstanceOf(InvalidSessionIdError);
      expect(prepareObservers).not.toHaveBeenCalled();
    });
  });

  describe('misbehaving storages', () => {
    class NonBooleanStorage extends ClosableStorage {
      constructor(private readonly value: unknown) {
        super();
      }
      override async createSession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
        await this.inner.createSession(sessionId, authKeyId);
        return this.value as boolean;
      }
      override async destroySession(sessionId: SessionId, authKeyId?: AuthKeyId): Promise<boolean> {
        await this.inner.destroySession(sessionId, authKeyId);
        return this.value as boolean;
      }
    }

    it.each<[string, unknown]>([
      ['undefined', undefined],
      ['the number 1', 1],
      ['the string "true"', 'true'],
      ['null', null],
    ])('createSession rejects with a TypeError when the storage resolves %s, notifying no one', async (_label, value) => {
      const observer = new RecordingObserver();
      const odd = new SessionSubject(new NonBooleanStorage(value), { logger });
      odd.subscribe(observer);
      const error = await odd.createSession(1n).then(
        () => undefined,
        (reason: unknown) => reason,
      );
      expect(error).toBeInstanceOf(TypeError);
      expect(error).not.toBeInstanceOf(InvalidSessionIdError);
      expect((error as TypeError).message).toMatch(/createSession/);
      expect((error as TypeError).message).toMatch(/boolean/);
      expect(observer.events).toEqual([]);
    });

    it('destroySession rejects with a TypeError when the storage resolves a non-boolean', async () => {
      const odd = new SessionSubject(new NonBooleanStorage(undefined), { logger });
      await expect(odd.destroySession(1n)).rejects.toThrow(TypeError);
      await expect(odd.destroySession(1n)).rejects.toThrow(/destroySession/);
    });

    it('a storage that throws synchronously makes the call reject, not throw, and close() still completes', async () => {
      class ThrowingStorage extends ClosableStorage {
        override createSession(): Promise<boolean> {
          throw new Error('store down');
        }
        override hasSession(): Promise<boolean> {
          throw new Error('store down');
        }
        override destroySession(): Promise<boolean> {
          throw new Error('store down');
        }
      }
      const throwing = new ThrowingStorage();
      const odd = new SessionSubject(throwing, { logger });
      for (const call of [() => odd.createSession(1n), () => odd.hasSession(1n), () => odd.destroySession(1n)]) {
        let promise: Promise<boolean> | undefined;
        expect(() => {
          promise = call();
        }).not.toThrow();
        await expect(promise).rejects.toThrow('store down');
      }
      await odd.close();
      expect(throwing.closeCalls).toBe(1);
    });

    it('a storage that rejects makes the call reject and notifies no one', async () => {
      class RejectingStorage extends ClosableStorage {
        override async createSession(): Promise<boolean> {
          throw new Error('store down');
        }
      }
      const observer = new RecordingObserver();
      const odd = new SessionSubject(new RejectingStorage(), { logger });
      odd.subscribe(observer);
      await expect(odd.createSession(1n)).rejects.toThrow('store down');
      expect(observer.events).toEqual([]);
    });
  });

  describe('close()', () => {
    it('waits for an in-flight transition to be announced before closing the storage', async () => {
      const closable = new ClosableStorage();
      const closing = new SessionSubject(closable, { logger });
      const observer = new GatedObserver();
      closing.subscribe(observer);

      const creating = closing.createSession(1n);
      await observer.called.promise;
      const closed = closing.close();
      expect(await stateOf(closed)).toBe('pending');
      expect(closable.closeCalls).toBe(0);

      observer.gate.resolve();
      await expect(creating).resolves.toBe(true);
      await closed;
      expect(closable.closeCalls).toBe(1);
      await expect(closable.inner.hasSession(1n)).resolves.toBe(true);
    });

    it('waits for several in-flight transitions', async () => {
      const closable = new ClosableStorage();
      const closing = new SessionSubject(closable, { logger });
      const gates = new Map<bigint, Deferred>([
        [1n, deferred()],
        [2n, deferred()],
      ]);
      const called = new Map<bigint, Deferred>([
        [1n, deferred()],
        [2n, deferred()],
      ]);
      closing.subscribe({
        update: (event) => {
          called.get(event.sessionId)!.resolve();
          return gates.get(event.sessionId)!.promise;
        },
      });
      const transitions = [closing.createSession(1n), closing.createSession(2n)];
      await Promise.all([...called.values()].map((d) => d.promise));
      const closed = closing.close();
      gates.get(1n)!.resolve();
      expect(await stateOf(closed)).toBe('pending');
      expect(closable.closeCalls).toBe(0);
      gates.get(2n)!.resolve();
      await closed;
      expect(closable.closeCalls).toBe(1);
      await expect(Promise.all(transitions)).resolves.toEqual([true, true]);
    });

    it('waits for an in-flight transition whose observer fails', async () => {
      const closable = new ClosableStorage();
      const closing = new SessionSubject(closable, { logger });
      const observer = new GatedObserver();
      closing.subscribe(observer);
      const creating = closing.createSession(1n);
      await observer.called.promise;
      const closed = closing.close();
      expect(await stateOf(closed)).toBe('pending');
      observer.gate.reject(new Error('observer failed'));
      await closed;
      await expect(creating).resolves.toBe(true);
      expect(closable.closeCalls).toBe(1);
    });

    it('closes the storage at once when nothing is in flight', async () => {
      const closable = new ClosableStorage();
      const closing = new SessionSubject(closable, { logger });
      await closing.createSession(1n);
      await closing.close();
      expect(closable.closeCalls).toBe(1);
    });

    it('is idempotent: the storage is closed once however often close() is called', async () => {
      const closable = new ClosableStorage();
      const closing = new SessionSubject(closable, { logger });
      const observer = new GatedObserver();
      closing.subscribe(observer);
      const creating = closing.createSession(1n);
      await observer.called.promise;
      const first = closing.close();
      const second = closing.close();
      observer.gate.resolve();
      await Promise.all([first, second, creating]);
      await closing.close();
      expect(closable.closeCalls).toBe(1);
    });

    it('works with a storage that has no close()', async () => {
      const bare: SessionStorage = {
        createSession: (id, key) => storage.createSession(id, key),
        hasSession: (id, key) => storage.hasSession(id, key),
        destroySession: (id, key) => storage.destroySession(id, key),
      };
      const closing = new SessionSubject(bare, { logger });
      await closing.createSession(1n);
      await expect(closing.close()).resolves.toBeUndefined();
    });
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
      expect(logger.error).toHaveBeenCalledTimes(1);
      expect(logger.error.mock.calls[0][0]).toEqual(expect.stringContaining('wiring failed'));
    });
  });

  describe('property: agrees with a model', () => {
    type Logged = [type: string, sessionId: bigint, authKeyId: bigint | undefined];

    function applyToModel(model: Set<string>, name: string, key: string, transitions: Logged[], logged: Logged): boolean {
      if (name === 'create') {
        if (model.has(key)) return false;
        model.add(key);
        transitions.push(logged);
        return true;
      }
      if (name === 'destroy') {
        if (!model.delete(key)) return false;
        transitions.push(logged);
        return true;
      }
      return model.has(key);
    }

    it('yields results equal to the model and an observer log equal to its transitions, in order', async () => {
      await fc.assert(
        fc.asyncProperty(opsArbitrary(), async (ops) => {
          const propLogger = fakeLogger();
          const propSubject = new SessionSubject(new InMemorySessionStorage(), { logger: propLogger });
          const seen: Logged[] = [];
          propSubject.subscribe({
            update: (event) => {
              seen.push([event.type, event.sessionId, event.authKeyId]);
            },
          });
          const model = new Set<string>();
          const transitions: Logged[] = [];
          for (const { name, sessionId, authKeyId } of ops) {
            const key = modelKey(sessionId, authKeyId);
            const expected = applyToModel(model, name, key, transitions, [name === 'create' ? 'created' : 'destroyed', sessionId, authKeyId]);
            const actual =
              name === 'create'
                ? await propSubject.createSession(sessionId, authKeyId)
                : name === 'destroy'
                  ? await propSubject.destroySession(sessionId, authKeyId)
                  : await propSubject.hasSession(sessionId, authKeyId);
            expect(actual).toBe(expected);
          }
          expect(seen).toEqual(transitions);
          expect(propLogger.error).not.toHaveBeenCalled();
        }),
        { numRuns: 300 },
      );
    });

    it('announces each transition exactly once when batches of operations run concurrently', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(opsArbitrary(12), { maxLength: 8 }), async (batches) => {
          const storageForRun = new InMemorySessionStorage();
          const propSubject = new SessionSubject(storageForRun, { logger: fakeLogger() });
          const seen: Logged[] = [];
          // An async observer, so that announcements of one batch overlap.
          propSubject.subscribe({
            update: async (event) => {
              await Promise.resolve();
              seen.push([event.type, event.sessionId, event.authKeyId]);
            },
          });
          const model = new Set<string>();
          for (const batch of batches) {
            // The in-memory storage applies calls in call order, so the model does too.
            const transitions: Logged[] = [];
            const expected = batch.map(({ name, sessionId, authKeyId }) =>
              applyToModel(model, name, modelKey(sessionId, authKeyId), transitions, [name === 'create' ? 'created' : 'destroyed', sessionId, authKeyId]),
            );
            const results = await Promise.all(
              batch.map(({ name, sessionId, authKeyId }) =>
                name === 'create'
                  ? propSubject.createSession(sessionId, authKeyId)
                  : name === 'destroy'
                    ? propSubject.destroySession(sessionId, authKeyId)
                    : propSubject.hasSession(sessionId, authKeyId),
              ),
            );
            expect(results).toEqual(expected);
            // Every transition of the batch was announced exactly once before its call resolved
            // (the order among concurrent announcements is not part of the contract).
            const sortKey = ([type, id, key]: Logged) => `${type}/${key ?? 'unscoped'}/${id}`;
            expect(seen.map(sortKey).sort()).toEqual(transitions.map(sortKey).sort());
            seen.length = 0;
          }
          expect(await storageForRun.count()).toBe(model.size);
        }),
        { numRuns: 200 },
      );
    });
  });

  describe('hasSession: the id check and the lookup', () => {
    const badIds: [string, unknown, unknown][] = [
      ['the number 1', 1, undefined],
      ['an out-of-range session id', 2n ** 63n, undefined],
      ['the number 1 as auth key id', 1n, 1],
    ];

    it.each(badIds)("rejects %s through the package's storage, which checks ids itself, without a synchronous throw", async (_label, sessionId, authKeyId) => {
      class Inheriting extends InMemorySessionStorage {}
      for (const target of [new InMemorySessionStorage(), new Inheriting()]) {
        const checked = new SessionSubject(target, { logger });
        let promise: Promise<boolean> | undefined;
        expect(() => {
          promise = (checked.hasSession.bind(checked) as unknown as LooseCall)(sessionId, authKeyId);
        }).not.toThrow();
        await expect(promise).rejects.toBeInstanceOf(InvalidSessionIdError);
      }
    });

    it.each(badIds)('checks %s itself for a subclass that overrides hasSession, never calling it', async (_label, sessionId, authKeyId) => {
      class Trusting extends InMemorySessionStorage {
        readonly seen: unknown[] = [];
        override hasSession(id: SessionId): Promise<boolean> {
          this.seen.push(id);
          return Promise.resolve(true);
        }
      }
      const trusting = new Trusting();
      const checked = new SessionSubject(trusting, { logger });
      await expect((checked.hasSession.bind(checked) as unknown as LooseCall)(sessionId, authKeyId)).rejects.toBeInstanceOf(InvalidSessionIdError);
      expect(trusting.seen).toEqual([]);
      await expect(checked.hasSession(5n)).resolves.toBe(true);
      expect(trusting.seen).toEqual([5n]);
    });

    it('checks ids itself when a stub replaces hasSession on an instance of the package storage', async () => {
      const stubbed = new InMemorySessionStorage();
      const stub = jest.fn(async () => true);
      stubbed.hasSession = stub;
      const checked = new SessionSubject(stubbed, { logger });
      await expect((checked.hasSession.bind(checked) as unknown as LooseCall)(1)).rejects.toBeInstanceOf(InvalidSessionIdError);
      expect(stub).not.toHaveBeenCalled();
      await expect(checked.hasSession(1n, KEY_A)).resolves.toBe(true);
      expect(stub).toHaveBeenCalledWith(1n, KEY_A);
    });

    it('checks ids itself when hasSession is replaced after the subject was built', async () => {
      const stubbed = new InMemorySessionStorage();
      const checked = new SessionSubject(stubbed, { logger });
      const stub = jest.fn(async () => true);
      stubbed.hasSession = stub;
      await expect((checked.hasSession.bind(checked) as unknown as LooseCall)(1)).rejects.toBeInstanceOf(InvalidSessionIdError);
      expect(stub).not.toHaveBeenCalled();
      await expect(checked.hasSession(2n)).resolves.toBe(true);
      expect(stub).toHaveBeenCalledWith(2n, undefined);
    });

    it('resolves what the storage resolves, scoped and unscoped', async () => {
      await storage.createSession(1n, KEY_A);
      await expect(subject.hasSession(1n, KEY_A)).resolves.toBe(true);
      await expect(subject.hasSession(1n)).resolves.toBe(false);
      await expect(subject.hasSession(1n, KEY_B)).resolves.toBe(false);
    });
  });

  describe('notification path (through the sink a self-announcing storage gets)', () => {
    /** A storage that announces transitions itself: it hands out the subject's sink. */
    class AnnouncingStorage extends ClosableStorage {
      sink: SessionTransitionSink | undefined;
      attach(sink: SessionTransitionSink): void {
        this.sink = sink;
      }
    }

    function announcer(...observers: SessionObserver[]): SessionTransitionSink {
      const announcing = new AnnouncingStorage();
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
      expect(logger.error).toHaveBeenCalledTimes(1);
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
      const messages = logger.error.mock.calls.map(([message]) => message as string);
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
      expect(logger.error).toHaveBeenCalledTimes(1);
      expect(logger.error.mock.calls[0][0]).toEqual(expect.stringContaining('then boom'));
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
      expect(logger.error.mock.calls[0][0]).toEqual(expect.stringContaining('getter boom'));
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
      expect(logger.error.mock.calls[0][0]).toEqual(expect.stringContaining('second read boom'));
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
      expect(logger.error.mock.calls[0][0]).toEqual(expect.stringContaining('constructor boom'));
    });

    it('a logger that throws stops neither the other observers nor the settling', async () => {
      const throwingLogger = {
        error: jest.fn(() => {
          throw new Error('logger down');
        }),
        warn: jest.fn(),
      };
      const after = new RecordingObserver();
      const announcing = new AnnouncingStorage();
      const announcingSubject = new SessionSubject(announcing, { logger: throwingLogger });
      for (const observer of [new ThrowingObserver(), new RejectingObserver(), after]) announcingSubject.subscribe(observer);
      const settling = announcing.sink!.announce(event);
      expect(after.events).toEqual([event]);
      await expect(settling).resolves.toBeUndefined();
      expect(throwingLogger.error).toHaveBeenCalledTimes(2);
    });
  });
});
