import {
  InMemorySessionStorage,
  InvalidSessionIdError,
  SessionSubject,
  type SessionEvent,
  type SessionObserver,
  type SessionStorage,
} from 'nestjs-mtproto-sessions';
import { deferred } from '../../support/deferred';
import { stateOf } from '../../support/promise-state';
import { RecordingLogger } from '../../support/recording-logger';
import { PlainStorage } from './fixtures';

/** Lets the subject be called with ids of the wrong type. */
type LooseCall = (sessionId: unknown, authKeyId?: unknown) => Promise<boolean>;

/** An observer that never settles, named for the logs. */
class HungObserver implements SessionObserver {
  calls = 0;
  update(): Promise<void> {
    this.calls++;
    return new Promise(() => undefined);
  }
  toString(): string {
    return 'HungObserver';
  }
}

/** An observer that names itself in the logs by its own toString(). */
function named(name: string, observer: SessionObserver): SessionObserver {
  return Object.assign(observer, { toString: () => name });
}

/** What each observer heard, as "type id" in order. */
class Transcript implements SessionObserver {
  readonly heard: string[] = [];
  update(event: SessionEvent): void {
    this.heard.push(`${event.type} ${event.sessionId}`);
  }
}

const STORAGES: [string, () => SessionStorage][] = [
  ['a self-announcing storage (InMemorySessionStorage)', () => new InMemorySessionStorage()],
  ['a storage the subject announces for', () => new PlainStorage()],
];

describe('SessionSubject reliability', () => {
  describe('observerTimeout', () => {
    it.each(STORAGES)('a hung observer is logged by name and no longer holds up the call, drain() or close(): %s', async (_, makeStorage) => {
      const logger = new RecordingLogger();
      const subject = new SessionSubject(makeStorage(), { logger, observerTimeout: 40 });
      const hung = new HungObserver();
      const healthy = new Transcript();
      subject.subscribe(hung);
      subject.subscribe(healthy);

      expect(await subject.createSession(5n, 9n)).toBe(true);
      expect(healthy.heard).toEqual(['created 5']);
      expect(logger.errors).toHaveLength(1);
      expect(logger.errors[0]).toMatch(/HungObserver did not settle 'created' of session 5 \(auth key 9\) within 40 ms/);

      const destroying = subject.destroySession(5n, 9n);
      await subject.drain();
      expect(await stateOf(destroying)).toBe('fulfilled');
      await subject.close();
      expect(logger.errors).toHaveLength(2);
    });

    it('waits for an observer that settles within the bound, and ignores a late rejection after it', async () => {
      const logger = new RecordingLogger();
      const subject = new SessionSubject(new InMemorySessionStorage(), { logger, observerTimeout: 40 });
      const late = deferred();
      const slow = deferred();
      subject.subscribe(named('LateObserver', { update: () => late.promise }));
      subject.subscribe({ update: () => slow.promise });
      const creating = subject.createSession(1n);
      expect(await stateOf(creating, 5)).toBe('pending');
      slow.resolve();
      // The late observer is still within its bound: the call waits for it.
      expect(await stateOf(creating, 5)).toBe('pending');
      expect(await creating).toBe(true);
      expect(logger.errors).toHaveLength(1);
      late.reject(new Error('too late to matter'));
      // The subject's handler was attached first, so it has run once this one has.
      await late.promise.catch(() => undefined);
      expect(logger.errors).toHaveLength(1);
    });

    it('bounds an eventsMissed observer too, so drain() settles', async () => {
      const logger = new RecordingLogger();
      let sink!: Parameters<NonNullable<SessionStorage['attach']>>[0];
      const storage: SessionStorage = {
        ...new PlainStorage(),
        createSession: () => Promise.resolve(true),
        hasSession: () => Promise.resolve(true),
        destroySession: () => Promise.resolve(true),
        attach: (given) => (sink = given),
      };
      const subject = new SessionSubject(storage, { logger, observerTimeout: 30 });
      subject.subscribe(named('Rebuilder', { update: () => undefined, eventsMissed: () => new Promise(() => undefined) }));
      const { SessionEventsMissed } = await import('nestjs-mtproto-sessions');
      sink.eventsMissed(new SessionEventsMissed(undefined, '1-0', 'elsewhere'));
      await subject.drain();
      expect(logger.errors).toEqual([expect.stringMatching(/Rebuilder did not settle missed events within 30 ms/)]);
    });
  });

  describe('re-entrant observers', () => {
    it.each(STORAGES)('an observer that destroys the session it was told about: every observer hears created, then destroyed: %s', async (_, makeStorage) => {
      const subject = new SessionSubject(makeStorage(), { logger: new RecordingLogger(), observerTimeout: 1000 });
      const before = new Transcript();
      const after = new Transcript();
      const destroyed: Promise<boolean>[] = [];
      subject.subscribe(before);
      subject.subscribe({
        update: async (event) => {
          if (event.type === 'created') {
            const destroying = subject.destroySession(event.sessionId);
            destroyed.push(destroying);
            // Awaiting the transition it caused must not wait for itself.
            await destroying;
          }
        },
      });
      subject.subscribe(after);
      expect(await subject.createSession(3n)).toBe(true);
      expect(await destroyed[0]).toBe(true);
      expect(before.heard).toEqual(['created 3', 'destroyed 3']);
      expect(after.heard).toEqual(['created 3', 'destroyed 3']);
      expect(await subject.hasSession(3n)).toBe(false);
    });

    it.each(STORAGES)('a synchronous observer that creates another session from inside update(): order kept, nothing waits on itself: %s', async (_, makeStorage) => {
      const subject = new SessionSubject(makeStorage(), { logger: new RecordingLogger(), observerTimeout: 1000 });
      const transcript = new Transcript();
      const spawned: Promise<boolean>[] = [];
      subject.subscribe({
        update: (event) => {
          if (event.type === 'created' && event.sessionId < 3n) spawned.push(subject.createSession(event.sessionId + 1n));
          if (event.type === 'created' && event.sessionId === 3n) spawned.push(subject.destroySession(1n));
        },
      });
      subject.subscribe(transcript);
      expect(await subject.createSession(1n)).toBe(true);
      expect(await Promise.all(spawned)).toEqual([true, true, true]);
      await subject.drain();
      expect(transcript.heard).toEqual(['created 1', 'created 2', 'created 3', 'destroyed 1']);
    });
  });

  describe('exotic ids reject, never throw', () => {
    const revoked = Proxy.revocable({}, {});
    revoked.revoke();
    const throwingTraps = new Proxy(
      {},
      {
        get() {
          throw new Error('get trap');
        },
        getPrototypeOf() {
          throw new Error('getPrototypeOf trap');
        },
      },
    );
    const subject = new SessionSubject(new InMemorySessionStorage(), { logger: new RecordingLogger() });
    const storage = new InMemorySessionStorage();
    const calls: [string, LooseCall][] = [
      ['subject.createSession', subject.createSession.bind(subject) as LooseCall],
      ['subject.hasSession', subject.hasSession.bind(subject) as LooseCall],
      ['subject.destroySession', subject.destroySession.bind(subject) as LooseCall],
      ['storage.createSession', storage.createSession.bind(storage) as LooseCall],
      ['storage.hasSession', storage.hasSession.bind(storage) as LooseCall],
      ['storage.destroySession', storage.destroySession.bind(storage) as LooseCall],
    ];
    for (const [name, call] of calls) {
      it(`${name} rejects a revoked Proxy and a Proxy whose traps throw, as session id and as auth key id`, async () => {
        for (const exotic of [revoked.proxy, throwingTraps]) {
          let result: Promise<boolean> | undefined;
          expect(() => (result = call(exotic))).not.toThrow();
          await expect(result).rejects.toBeInstanceOf(InvalidSessionIdError);
          expect(() => (result = call(1n, exotic))).not.toThrow();
          await expect(result).rejects.toThrow(/auth key id an object that cannot be inspected/);
        }
      });
    }
  });

  describe('unprintable rejection values are still reported', () => {
    it.each([
      ['a null-prototype object', () => Object.create(null) as unknown],
      [
        'an object whose toString throws',
        () => ({
          toString() {
            throw new Error('no text');
          },
        }),
      ],
    ])('an observer that rejects with %s is logged by name', async (_, value) => {
      const logger = new RecordingLogger();
      const subject = new SessionSubject(new InMemorySessionStorage(), { logger });
      subject.subscribe(named('OddObserver', { update: () => Promise.reject(value()) }));
      subject.subscribe({ update: () => Promise.resolve(), eventsMissed: () => undefined });
      expect(await subject.createSession(8n)).toBe(true);
      expect(logger.errors).toHaveLength(1);
      expect(logger.errors[0]).toMatch(/OddObserver failed on 'created' of session 8/);
    });
  });
});
