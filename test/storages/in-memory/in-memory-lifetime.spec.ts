import { randomFillSync } from 'node:crypto';
import {
  InMemorySessionStorage,
  SessionEvent,
  SessionLimitError,
  SessionSubject,
  type InMemorySessionStorageOptions,
  type SessionObserver,
  type SessionTransitionSink,
} from 'nestjs-mtproto-sessions';
import { within } from '../../support/wait-until';
import { INT64_MAX, INT64_MIN } from '../../../src/core/session-id';
import { deferred, type Deferred } from '../../support/deferred';
import { stateOf } from '../../support/promise-state';
import { RecordingLogger } from '../../support/recording-logger';

const IDLE = 1000;
/** touchSlack for IDLE: idleTimeout / 8. */
const SLACK = 125;
const KEY = 0x0123456789abcdefn;

/** A sink that records what it is told; `settle` decides what announce() returns. */
function recordingSink(settle: (event: SessionEvent) => Promise<unknown> | undefined = () => undefined) {
  const events: SessionEvent[] = [];
  const logger = new RecordingLogger();
  const sink: SessionTransitionSink & { events: SessionEvent[]; logger: RecordingLogger } = {
    events,
    logger,
    eventsMissed: jest.fn(),
    announce: (event) => {
      events.push(event);
      return settle(event);
    },
  };
  return sink;
}

/** A storage on a manual clock, attached to a recording sink. */
function expiring(options: InMemorySessionStorageOptions = {}) {
  const time = { now: 1_700_000_000_000 };
  const storage = new InMemorySessionStorage({ idleTimeout: IDLE, clock: () => time.now, instanceId: 'node-1', ...options });
  const sink = recordingSink();
  storage.attach(sink);
  return { storage, sink, time };
}

const expired = (sessionId: bigint, authKeyId?: bigint) => new SessionEvent('destroyed', sessionId, authKeyId, { reason: 'expired', origin: 'node-1' });
const created = (sessionId: bigint, authKeyId?: bigint) => new SessionEvent('created', sessionId, authKeyId, { origin: 'node-1' });

describe('InMemorySessionStorage options', () => {
  it.each([
    [{ idleTimeout: 0 }, /idleTimeout/],
    [{ idleTimeout: 1.5 }, /idleTimeout/],
    [{ idleTimeout: '1000' as unknown as number }, /idleTimeout \(ms\) must be a positive integer; got the string "1000"/],
    [{ maxSessions: 0 }, /maxSessions/],
    [{ maxSessions: -1 }, /maxSessions/],
    [{ maxSessions: Object.assign(Object.create(null) as object, { n: 1 }) as unknown as number }, /maxSessions \(?.*must be a positive integer; got an object \(null prototype\)/],
    [{ sweepInterval: 0 }, /sweepInterval/],
    [{ idleTimeout: 1000, sweepInterval: 2 ** 31 }, /sweepInterval \(ms\) must be a positive integer of at most 2147483647; got 2147483648/],
    [{ sweepInterval: 100 }, /sweepInterval has no effect without idleTimeout/],
    [{ clock: 'now' as unknown as () => number }, /clock/],
    [{ instanceId: '' }, /instanceId/],
    [{ instanceId: 7 as unknown as string }, /instanceId/],
  ])('rejects %p with a TypeError naming it', (options, named) => {
    expect(() => new InMemorySessionStorage(options)).toThrow(TypeError);
    expect(() => new InMemorySessionStorage(options)).toThrow(named);
  });

  it('refuses an option it does not know (a misspelt one would run on its default), naming it and the known ones', () => {
    const misspelt = { idleTimout: 1000 } as unknown as ConstructorParameters<typeof InMemorySessionStorage>[0];
    expect(() => new InMemorySessionStorage(misspelt)).toThrow(
      expect.objectContaining({ name: 'TypeError', message: 'InMemorySessionStorage has unknown option idleTimout; expected idleTimeout, maxSessions, sweepInterval, clock or instanceId' }),
    );
  });

  it('names itself with a random UUID unless given an instanceId', () => {
    const a = new InMemorySessionStorage();
    const b = new InMemorySessionStorage();
    expect(a.instanceId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(a.instanceId).not.toBe(b.instanceId);
    expect(new InMemorySessionStorage({ instanceId: 'eu-1' }).instanceId).toBe('eu-1');
  });
});

describe('InMemorySessionStorage maxSessions', () => {
  it('rejects a new session past the limit with SessionLimitError, changing nothing', async () => {
    const storage = new InMemorySessionStorage({ maxSessions: 3 });
    const sink = recordingSink();
    storage.attach(sink);
    await storage.createSession(1n);
    await storage.createSession(2n);
    await storage.createSession(1n, KEY);
    const error = await storage.createSession(4n).then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(SessionLimitError);
    expect(error).toMatchObject({ name: 'SessionLimitError', limit: 3 });
    await expect(storage.createSession(5n, KEY)).rejects.toBeInstanceOf(SessionLimitError);
    await expect(storage.count()).resolves.toBe(3);
    await expect(storage.hasSession(4n)).resolves.toBe(false);
    // An existing session is no new one: still false, not an error.
    await expect(storage.createSession(1n)).resolves.toBe(false);
    await expect(storage.createSession(1n, KEY)).resolves.toBe(false);
    expect(sink.events.map((e) => e.type)).toEqual(['created', 'created', 'created']);
    await storage.destroySession(2n);
    await expect(storage.createSession(4n)).resolves.toBe(true);
  });

  it('does not count lapsed sessions: it expires them first to make room', async () => {
    const { storage, sink, time } = expiring({ maxSessions: 2 });
    const start = time.now;
    await storage.createSession(1n);
    await storage.createSession(2n);
    time.now = start + IDLE - 1;
    await storage.hasSession(2n); // keeps 2 alive, 1 is left to lapse
    time.now = start + IDLE + SLACK;
    sink.events.length = 0;
    await expect(storage.createSession(3n)).resolves.toBe(true);
    expect(sink.events).toEqual([expired(1n), created(3n)]);
    await expect(storage.count()).resolves.toBe(2);
    await expect(storage.createSession(4n)).rejects.toBeInstanceOf(SessionLimitError);
    expect(sink.events).toHaveLength(2);
  });
});

describe('InMemorySessionStorage idle expiry (manual clock)', () => {
  it('keeps a session for at least idleTimeout after each use, and drops it within idleTimeout + touchSlack', async () => {
    const { storage, sink, time } = expiring();
    await storage.createSession(1n);
    const created = time.now;
    time.now = created + IDLE - 1;
    await expect(storage.expireIdleSessions()).resolves.toBe(0);
    // Touched just before it would lapse, for ten idle periods in a row.
    for (let i = 0; i < 10; i++) {
      await expect(storage.hasSession(1n)).resolves.toBe(true);
      time.now += IDLE - 1;
    }
    await expect(storage.hasSession(1n)).resolves.toBe(true);
    const lastUse = time.now;
    time.now = lastUse + IDLE - 1;
    await expect(storage.expireIdleSessions()).resolves.toBe(0);
    time.now = lastUse + IDLE + SLACK;
    await expect(storage.expireIdleSessions()).resolves.toBe(1);
    expect(sink.events.at(-1)).toEqual(expired(1n));
    await expect(storage.count()).resolves.toBe(0);
  });

  it('createSession on an existing session counts as a use', async () => {
    const { storage, time } = expiring();
    await storage.createSession(1n);
    time.now += IDLE - 1;
    await expect(storage.createSession(1n)).resolves.toBe(false);
    time.now += IDLE - 1;
    await expect(storage.expireIdleSessions()).resolves.toBe(0);
    await expect(storage.hasSession(1n)).resolves.toBe(true);
  });

  it('treats a lapsed session as gone for every method, announcing each expiry exactly once', async () => {
    const { storage, sink, time } = expiring();
    for (const id of [1n, 2n, 3n]) await storage.createSession(id);
    await storage.createSession(4n, KEY);
    time.now += IDLE + SLACK;
    sink.events.length = 0;
    await expect(storage.hasSession(1n)).resolves.toBe(false);
    await expect(storage.destroySession(2n)).resolves.toBe(false);
    await expect(storage.createSession(3n)).resolves.toBe(true);
    await expect(storage.hasSession(4n, KEY)).resolves.toBe(false);
    expect(sink.events).toEqual([expired(1n), expired(2n), expired(3n), created(3n), expired(4n, KEY)]);
    // Announced already: the sweep finds nothing more, and a second look announces nothing.
    await expect(storage.expireIdleSessions()).resolves.toBe(0);
    await expect(storage.hasSession(1n)).resolves.toBe(false);
    await expect(storage.destroySession(2n)).resolves.toBe(false);
    expect(sink.events).toHaveLength(5);
    await expect(storage.count()).resolves.toBe(1);
  });

  it('createSession on a lapsed id announces the expiry, then the creation, and resolves after both settled', async () => {
    const time = { now: 0 };
    const storage = new InMemorySessionStorage({ idleTimeout: IDLE, clock: () => time.now, instanceId: 'node-1' });
    const gates: Deferred[] = [];
    const sink = recordingSink(() => {
      const gate = deferred();
      gates.push(gate);
      return gate.promise;
    });
    storage.attach(sink);
    const first = storage.createSession(9n);
    gates[0].resolve();
    await expect(first).resolves.toBe(true);
    time.now += IDLE + SLACK;
    const recreating = storage.createSession(9n);
    expect(sink.events.slice(1)).toEqual([expired(9n), created(9n)]);
    gates[2].resolve(); // the creation's announcement settles first
    expect(await stateOf(recreating, 3)).toBe('pending');
    gates[1].resolve();
    await expect(recreating).resolves.toBe(true);
    await expect(storage.hasSession(9n)).resolves.toBe(true);
  });

  it('expireIdleSessions announces every lapsed session once, scoped ones with their auth key, the 64-bit edges and 0 included', async () => {
    const { storage, sink, time } = expiring();
    const ids = [0n, -1n, 1n, INT64_MIN, INT64_MAX];
    for (const id of ids) {
      await storage.createSession(id);
      await storage.createSession(id, 0n);
      await storage.createSession(id, KEY);
    }
    await storage.createSession(5n);
    time.now += IDLE / 2;
    await storage.createSession(6n); // younger: survives the sweep below
    time.now += IDLE / 2 + SLACK;
    sink.events.length = 0;
    await expect(storage.expireIdleSessions()).resolves.toBe(ids.length * 3 + 1);
    const key = (e: SessionEvent) => `${e.authKeyId ?? '-'}/${e.sessionId}`;
    const expected = [...ids.flatMap((id) => [expired(id), expired(id, 0n), expired(id, KEY)]), expired(5n)];
    expect(sink.events.map(key).sort()).toEqual(expected.map(key).sort());
    expect(sink.events.every((e) => e.type === 'destroyed' && e.reason === 'expired' && e.origin === 'node-1')).toBe(true);
    for (const event of sink.events) expect(event).toEqual(expected.find((e) => key(e) === key(event)));
    await expect(storage.expireIdleSessions()).resolves.toBe(0);
    await expect(storage.count()).resolves.toBe(1);
    await expect(storage.hasSession(6n)).resolves.toBe(true);
    await expect(storage.hasSession(0n)).resolves.toBe(false);
  });

  it('without a sink, expiry removes sessions silently', async () => {
    const time = { now: 5_000 };
    const storage = new InMemorySessionStorage({ idleTimeout: IDLE, clock: () => time.now });
    await storage.createSession(1n);
    await storage.createSession(2n, KEY);
    await storage.createSession(3n);
    time.now += IDLE + SLACK;
    await expect(storage.hasSession(3n)).resolves.toBe(false);
    await expect(storage.expireIdleSessions()).resolves.toBe(2);
    await expect(storage.count()).resolves.toBe(0);
    storage.close();
  });

  it('survives far clock jumps both ways, and idle timeouts past 32 bits of milliseconds', async () => {
    const { storage, time } = expiring();
    await storage.createSession(1n);
    time.now += 2 ** 32; // further than a 32-bit deadline reaches
    await expect(storage.hasSession(1n)).resolves.toBe(false);
    await storage.createSession(2n);
    time.now -= 3_600_000; // the clock steps back an hour
    await expect(storage.hasSession(2n)).resolves.toBe(true);
    time.now += 3_600_000 + IDLE + SLACK;
    await expect(storage.hasSession(2n)).resolves.toBe(false);

    const days = 100 * 86_400_000;
    const long = expiring({ idleTimeout: days });
    await long.storage.createSession(1n);
    long.time.now += days - 1;
    await expect(long.storage.expireIdleSessions()).resolves.toBe(0);
    long.time.now += 1 + days / 8;
    await expect(long.storage.expireIdleSessions()).resolves.toBe(1);
  });

  it('works through SessionSubject: observers hear expiries, and each transition once', async () => {
    const { storage, time } = (() => {
      const clock = { now: 0 };
      return { storage: new InMemorySessionStorage({ idleTimeout: IDLE, clock: () => clock.now, instanceId: 'node-1' }), time: clock };
    })();
    const subject = new SessionSubject(storage, { logger: new RecordingLogger() });
    const heard: SessionEvent[] = [];
    const observer: SessionObserver = { update: (event) => void heard.push(event) };
    subject.subscribe(observer);
    await subject.createSession(1n);
    await subject.createSession(2n);
    time.now += IDLE + SLACK;
    await expect(subject.createSession(2n)).resolves.toBe(true);
    await expect(storage.expireIdleSessions()).resolves.toBe(1);
    expect(heard).toEqual([created(1n), created(2n), expired(2n), created(2n), expired(1n)]);
    await subject.close();
  });
});

describe('InMemorySessionStorage announcing', () => {
  it('resolves createSession and destroySession only after the announcement settled', async () => {
    let gate = deferred();
    const storage = new InMemorySessionStorage();
    storage.attach(recordingSink(() => gate.promise));
    const creating = storage.createSession(1n);
    expect(await stateOf(creating, 3)).toBe('pending');
    gate.resolve();
    await expect(creating).resolves.toBe(true);
    gate = deferred();
    const destroying = storage.destroySession(1n);
    expect(await stateOf(destroying, 3)).toBe('pending');
    gate.resolve();
    await expect(destroying).resolves.toBe(true);
  });

  it('announces only real transitions, with the instance as origin', async () => {
    const storage = new InMemorySessionStorage({ instanceId: 'node-1' });
    const sink = recordingSink();
    storage.attach(sink);
    await storage.createSession(1n, KEY);
    await storage.createSession(1n, KEY);
    await storage.hasSession(1n, KEY);
    await storage.destroySession(2n);
    await storage.destroySession(1n, KEY);
    expect(sink.events).toEqual([created(1n, KEY), new SessionEvent('destroyed', 1n, KEY, { origin: 'node-1' })]);
  });

  it('a sink that throws or rejects is logged, and the change stands', async () => {
    const storage = new InMemorySessionStorage();
    let mode: 'throw' | 'reject' = 'throw';
    const sink = recordingSink(() => {
      if (mode === 'throw') throw new Error('sink boom');
      return Promise.reject(new Error('sink rejected'));
    });
    storage.attach(sink);
    await expect(storage.createSession(1n)).resolves.toBe(true);
    mode = 'reject';
    await expect(storage.destroySession(1n)).resolves.toBe(true);
    await expect(storage.count()).resolves.toBe(0);
    expect(sink.logger.errors).toEqual([
      expect.stringMatching(/could not announce 'created' of session 1: sink boom/),
      expect.stringMatching(/could not announce 'destroyed' of session 1: sink rejected/),
    ]);
  });

  it('a sink that throws or rejects with a value that has no text is logged with what it was, and the call still resolves', async () => {
    const storage = new InMemorySessionStorage();
    let mode: 'throw' | 'reject' = 'throw';
    const sink = recordingSink(() => {
      const hostile = Object.assign(Object.create(null) as object, { code: mode === 'throw' ? 'E_THROWN' : 'E_REJECTED' });
      if (mode === 'throw') throw hostile;
      return Promise.reject(hostile);
    });
    storage.attach(sink);
    await expect(storage.createSession(1n)).resolves.toBe(true);
    mode = 'reject';
    await expect(storage.destroySession(1n)).resolves.toBe(true);
    expect(sink.logger.errors).toEqual([
      expect.stringMatching(/could not announce 'created' of session 1: .*null prototype.*E_THROWN/),
      expect.stringMatching(/could not announce 'destroyed' of session 1: .*null prototype.*E_REJECTED/),
    ]);
  });

  it('takes one sink: attaching a second, or something that is no sink, throws a TypeError', () => {
    const storage = new InMemorySessionStorage();
    expect(() => storage.attach({} as SessionTransitionSink)).toThrow(TypeError);
    storage.attach(recordingSink());
    expect(() => storage.attach(recordingSink())).toThrow(TypeError);
    expect(() => new SessionSubject(storage)).toThrow(/attached/);
  });
});

describe('InMemorySessionStorage sweep timer', () => {
  afterEach(() => {
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  it('starts one unref\'d timer with the first session, none without idleTimeout', async () => {
    const setIntervalSpy = jest.spyOn(global, 'setInterval');
    const plain = new InMemorySessionStorage();
    await plain.createSession(1n);
    const { storage } = expiring({ sweepInterval: 50 });
    expect(setIntervalSpy).not.toHaveBeenCalled();
    await storage.createSession(1n);
    await storage.createSession(2n);
    expect(setIntervalSpy).toHaveBeenCalledTimes(1);
    expect(setIntervalSpy.mock.calls[0][1]).toBe(50);
    const timer = setIntervalSpy.mock.results[0].value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
    storage.close();
  });

  it('announces lapsed sessions by itself', async () => {
    const { storage, sink, time } = expiring({ sweepInterval: 5 });
    const heard = deferred<SessionEvent>();
    const announce = sink.announce;
    sink.announce = (event) => {
      if (event.type === 'destroyed') heard.resolve(event);
      return announce(event);
    };
    await storage.createSession(1n, KEY);
    time.now += IDLE + SLACK;
    await expect(within(heard.promise, 'a sweep to announce the expiry', 2000)).resolves.toEqual(expired(1n, KEY));
    await expect(storage.count()).resolves.toBe(0);
    storage.close();
  });

  it('close() stops the timer: no sweep after it, and it is idempotent', async () => {
    jest.useFakeTimers();
    const { storage, sink, time } = expiring({ sweepInterval: 10 });
    await storage.createSession(1n);
    await storage.createSession(2n);
    time.now += IDLE + SLACK;
    await storage.hasSession(2n); // noticed by the operation
    sink.events.length = 0;
    jest.advanceTimersByTime(10);
    expect(sink.events).toEqual([expired(1n)]); // the sweep runs while open
    await storage.createSession(3n);
    time.now += IDLE + SLACK;
    storage.close();
    storage.close();
    expect(jest.getTimerCount()).toBe(0);
    sink.events.length = 0;
    jest.advanceTimersByTime(1000);
    expect(sink.events).toEqual([]);
    // Still usable: operations notice lapsed sessions, and no timer comes back.
    await storage.createSession(4n);
    expect(jest.getTimerCount()).toBe(0);
    await expect(storage.expireIdleSessions()).resolves.toBe(1);
  });

  it('a sweep that throws (a broken clock) is logged, not thrown from the timer', async () => {
    jest.useFakeTimers();
    const { storage, sink, time } = expiring({ sweepInterval: 10 });
    await storage.createSession(1n);
    Object.defineProperty(time, 'now', {
      get(): number {
        throw new Error('clock broke');
      },
    });
    expect(() => jest.advanceTimersByTime(10)).not.toThrow();
    expect(sink.logger.entries).toContainEqual({ level: 'error', message: expect.stringMatching(/node-1 sweep failed: clock broke/), context: expect.any(String) });
    storage.close();
  });

  it('spreads a pass over ticks of bounded size, covering a table of more than 2^20 slots within 16 ticks', async () => {
    jest.useFakeTimers();
    const time = { now: 0 };
    const storage = new InMemorySessionStorage({ idleTimeout: IDLE, clock: () => time.now, sweepInterval: 10 });
    let announced = 0;
    storage.attach({ announce: () => void announced++, eventsMissed: () => {}, logger: new RecordingLogger() });
    const sessions = 1_000_000;
    const ids = new BigInt64Array(sessions);
    randomFillSync(ids);
    for (let i = 0; i < sessions; i++) await storage.createSession(ids[i]);
    announced = 0;
    time.now += IDLE + SLACK;
    const perTick: number[] = [];
    while (announced < sessions && perTick.length < 40) {
      const before = announced;
      jest.advanceTimersByTime(10);
      perTick.push(announced - before);
    }
    expect(announced).toBe(sessions);
    expect(perTick.length).toBeGreaterThan(1);
    expect(perTick.length).toBeLessThanOrEqual(16);
    storage.close();
  });
});
