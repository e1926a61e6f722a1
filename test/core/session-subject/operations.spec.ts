import { InMemorySessionStorage, InvalidSessionIdError, SessionSubject, type SessionId } from 'nestjs-mtproto-sessions';
import { INT64_MAX, INT64_MIN } from '../../../src/core/session-id';
import type { RecordingLogger } from '../../support/recording-logger';
import { ClosableStorage, freshSubject, KEY_A, KEY_B, RecordingObserver, type LooseCall } from './fixtures';

// SessionSubject: storage operations, bad ids, and how hasSession checks ids.
describe('SessionSubject', () => {
  let storage: InMemorySessionStorage;
  let logger: RecordingLogger;
  let subject: SessionSubject;

  beforeEach(() => {
    ({ storage, logger, subject } = freshSubject());
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
        expect(logger.errors).toEqual([]);
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

});
