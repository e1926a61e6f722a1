/**
 * Announcing an event to observers. The subject announces through the sink it
 * hands a storage that announces transitions itself (SessionStorage.attach),
 * which is the public way to reach its notification path alone; the baselines
 * are eventemitter2 (what @nestjs/event-emitter runs on), a bare Promise.all,
 * and the subject's notification path as it was in 0.1.0, copied below.
 */
import { EventEmitter2 } from 'eventemitter2';
import { SessionEvent, type SessionObserver, type SessionStorage, type SessionTransitionSink, SessionSubject, InMemorySessionStorage } from '../../src/index.js';
import type { Suite } from '../harness.js';
import { IdStream } from '../ids.js';
import { expectEqual, RecordingLogger } from '../support.js';

const OBSERVERS = 10;

/** A storage that only hands out the subject's sink: `sink.announce(event)` is the subject's notification, and nothing else. */
class AnnouncingStorage implements SessionStorage {
  sink: SessionTransitionSink | undefined;
  attach(sink: SessionTransitionSink): void {
    this.sink = sink;
  }
  async createSession(): Promise<boolean> {
    throw new Error('not used');
  }
  async hasSession(): Promise<boolean> {
    throw new Error('not used');
  }
  async destroySession(): Promise<boolean> {
    throw new Error('not used');
  }
}

function subjectSink(observers: readonly SessionObserver[], logger: RecordingLogger): SessionTransitionSink {
  const storage = new AnnouncingStorage();
  const subject = new SessionSubject(storage, { logger });
  for (const observer of observers) subject.subscribe(observer);
  return storage.sink!;
}

/**
 * SessionSubject's notification path in 0.1.0 (notify() and the in-flight
 * tracking the sink adds), copied to measure the lean one against it.
 */
class NotifyBefore {
  private readonly inFlight = new Set<Promise<unknown>>();
  constructor(
    private readonly observers: readonly SessionObserver[],
    private readonly logger: RecordingLogger,
  ) {}

  announce(event: SessionEvent): Promise<unknown> | undefined {
    const settling = this.notify(event);
    if (settling !== undefined) this.track(settling);
    return settling;
  }

  private notify(event: SessionEvent): Promise<unknown> | undefined {
    let settling: Promise<void>[] | undefined;
    for (const observer of this.observers) {
      let result: void | Promise<void>;
      try {
        result = observer.update(event);
      } catch (error) {
        this.report(error);
        continue;
      }
      if (typeof (result as PromiseLike<void> | undefined)?.then === 'function') {
        (settling ??= []).push(Promise.resolve(result).then(undefined, (error: unknown) => this.report(error)));
      }
    }
    return settling && Promise.all(settling);
  }

  private track(settling: Promise<unknown>): void {
    this.inFlight.add(settling);
    const forget = () => this.inFlight.delete(settling);
    settling.then(forget, forget);
  }

  private report(error: unknown): void {
    this.logger.error(String(error));
  }
}

export const notifySuite: Suite = {
  name: 'notify',
  description: `announcing one event to ${OBSERVERS} observers, against eventemitter2, Promise.all and 0.1.0's notify`,
  async run(ctx) {
    const events = ctx.pick({ quick: 2_000, default: 200_000 });
    const cycles = ctx.pick({ quick: 1_000, default: 100_000 });
    const logger = new RecordingLogger();
    let calls = 0;
    const asyncObservers: SessionObserver[] = Array.from({ length: OBSERVERS }, () => ({
      async update() {
        calls++;
      },
    }));
    const syncObservers: SessionObserver[] = Array.from({ length: OBSERVERS }, () => ({
      update() {
        calls++;
      },
    }));
    const asyncEmitter = new EventEmitter2();
    const syncEmitter = new EventEmitter2();
    for (let i = 0; i < OBSERVERS; i++) {
      asyncEmitter.on('session', async () => {
        calls++;
      });
      syncEmitter.on('session', () => {
        calls++;
      });
    }
    const asyncSink = subjectSink(asyncObservers, logger);
    const syncSink = subjectSink(syncObservers, logger);
    const before = new NotifyBefore(asyncObservers, logger);
    const event = new SessionEvent('created', 1n);

    /** Runs `body` `count` times and checks that every observer was called each time. */
    const announcing = (count: number, body: () => Promise<unknown> | unknown) => ({
      ops: count,
      async run() {
        calls = 0;
        for (let i = 0; i < count; i++) await body();
        expectEqual(calls, count * OBSERVERS, 'observer calls');
      },
    });

    ctx.progress(`${events} events per round to ${OBSERVERS} observers`);
    const async = await ctx.rates({
      subject: announcing(events, () => asyncSink.announce(event)),
      before: announcing(events, () => before.announce(event)),
      emitAsync: announcing(events, () => asyncEmitter.emitAsync('session', event)),
      promiseAll: announcing(events, () => Promise.all(asyncObservers.map((observer) => observer.update(event)))),
    });
    const sync = await ctx.rates({
      subject: {
        ops: events,
        run() {
          calls = 0;
          // All synchronous: announce returns nothing to wait for.
          for (let i = 0; i < events; i++) if (syncSink.announce(event) !== undefined) throw new Error('a promise for synchronous observers');
          expectEqual(calls, events * OBSERVERS, 'observer calls');
        },
      },
      emit: {
        ops: events,
        run() {
          calls = 0;
          for (let i = 0; i < events; i++) syncEmitter.emit('session', event);
          expectEqual(calls, events * OBSERVERS, 'observer calls');
        },
      },
    });

    // The whole transition: in-memory storage, subject, observers, against the storage and eventemitter2.
    ctx.progress(`${cycles} createSession + destroySession cycles per round`);
    const cycleSubject = new SessionSubject(new InMemorySessionStorage(), { logger });
    for (const observer of asyncObservers) cycleSubject.subscribe(observer);
    const plainStorage = new InMemorySessionStorage();
    const ids = new BigInt64Array(cycles);
    const random = new IdStream(41);
    for (let i = 0; i < cycles; i++) ids[i] = random.next();
    const cycle = await ctx.rates({
      subject: {
        ops: cycles,
        async run() {
          calls = 0;
          for (let i = 0; i < cycles; i++) {
            const id = ids[i];
            if (!(await cycleSubject.createSession(id))) throw new Error('not created');
            if (!(await cycleSubject.destroySession(id))) throw new Error('not destroyed');
          }
          expectEqual(calls, 2 * cycles * OBSERVERS, 'observer calls');
        },
      },
      emitAsync: {
        ops: cycles,
        async run() {
          calls = 0;
          for (let i = 0; i < cycles; i++) {
            const id = ids[i];
            if (!(await plainStorage.createSession(id))) throw new Error('not created');
            await asyncEmitter.emitAsync('session', new SessionEvent('created', id));
            if (!(await plainStorage.destroySession(id))) throw new Error('not destroyed');
            await asyncEmitter.emitAsync('session', new SessionEvent('destroyed', id));
          }
          expectEqual(calls, 2 * cycles * OBSERVERS, 'observer calls');
        },
      },
    });
    logger.assertQuiet('the notify suite');

    const params = { observers: OBSERVERS, eventsPerRound: events };
    ctx.figure({
      id: 'notify.async-vs-emitasync',
      label: `subject announces 1 event to ${OBSERVERS} async observers, vs eventemitter2`,
      unit: 'events/s',
      better: 'higher',
      value: async.subject,
      baseline: { label: `emitAsync, ${OBSERVERS} async listeners`, samples: async.emitAsync },
      target: { ratio: 1.2 },
      params,
    });
    ctx.figure({
      id: 'notify.async-vs-0.1.0',
      label: `subject announces 1 event to ${OBSERVERS} async observers, vs 0.1.0's notify`,
      unit: 'events/s',
      better: 'higher',
      value: async.subject,
      baseline: { label: "0.1.0's notify + in-flight tracking", samples: async.before },
      params,
    });
    ctx.figure({
      id: 'notify.async-vs-promise-all',
      label: `subject announces 1 event to ${OBSERVERS} async observers, vs bare Promise.all`,
      unit: 'events/s',
      better: 'higher',
      value: async.subject,
      baseline: { label: 'await Promise.all(observers.map(update))', samples: async.promiseAll },
      note: 'context: no isolation, no tracking',
      params,
    });
    ctx.figure({
      id: 'notify.sync-vs-emit',
      label: `subject announces 1 event to ${OBSERVERS} sync observers, vs eventemitter2`,
      unit: 'events/s',
      better: 'higher',
      value: sync.subject,
      baseline: { label: `emit, ${OBSERVERS} sync listeners`, samples: sync.emit },
      params,
    });
    ctx.figure({
      id: 'notify.cycle-vs-emitasync',
      label: `subject.createSession + destroySession, ${OBSERVERS} async observers, vs storage + eventemitter2`,
      unit: 'cycles/s',
      better: 'higher',
      value: cycle.subject,
      baseline: { label: 'storage + emitAsync, twice', samples: cycle.emitAsync },
      params: { observers: OBSERVERS, cyclesPerRound: cycles },
    });
  },
};
