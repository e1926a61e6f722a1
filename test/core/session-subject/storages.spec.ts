import {
  InMemorySessionStorage,
  InvalidSessionIdError,
  SessionSubject,
  type AuthKeyId,
  type SessionId,
  type SessionStorage,
} from 'nestjs-mtproto-sessions';
import { deferred, type Deferred } from '../../support/deferred';
import { stateOf } from '../../support/promise-state';
import type { RecordingLogger } from '../../support/recording-logger';
import { ClosableStorage, freshSubject, GatedObserver, RecordingObserver } from './fixtures';

// SessionSubject: storages that misbehave, and close().
describe('SessionSubject', () => {
  let storage: InMemorySessionStorage;
  let logger: RecordingLogger;

  beforeEach(() => {
    ({ storage, logger } = freshSubject());
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
      ['an object with a null prototype', Object.create(null)],
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

});
