import { Controller, Inject, Injectable, Module, Scope, type INestApplication, type OnModuleInit } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { OnSessionEvent, SessionEvent, SessionsModule, SessionSubject, type SessionEventType } from 'nestjs-mtproto-sessions';
import { bootstrap } from '../support/bootstrap';
import type { RecordingLogger } from '../support/recording-logger';

/** Events a decorated method received, in order. */
class EventLog {
  readonly events: SessionEvent[] = [];
  protected record(event: SessionEvent): void {
    this.events.push(event);
  }
}

/** The default in-memory storage announces transitions itself, naming itself as their origin. */
const fromStorage = (event: SessionEvent) => ({ ...event, origin: expect.any(String) as string });
const created = (sessionId: bigint, authKeyId?: bigint) => fromStorage(new SessionEvent('created', sessionId, authKeyId));
const destroyed = (sessionId: bigint, authKeyId?: bigint) => fromStorage(new SessionEvent('destroyed', sessionId, authKeyId));

/** Creates then destroys one session, scoped, and one unscoped. */
async function runTransitions(subject: SessionSubject): Promise<void> {
  await subject.createSession(1n);
  await subject.createSession(2n ** 62n + 1n, -5n);
  await subject.destroySession(1n);
}
const ALL_TRANSITIONS = [created(1n), created(2n ** 62n + 1n, -5n), destroyed(1n)];

describe('@OnSessionEvent() discovery', () => {
  let app: INestApplication | undefined;
  let logger: RecordingLogger;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('wires decorated methods of providers and controllers, with no manual subscribe', async () => {
    @Injectable()
    class ProviderObserver extends EventLog {
      @OnSessionEvent()
      onSession(event: SessionEvent) {
        this.record(event);
      }
    }
    @Controller()
    class ControllerObserver extends EventLog {
      @OnSessionEvent()
      async onSession(event: SessionEvent) {
        this.record(event);
      }
    }
    @Module({ imports: [SessionsModule.forRoot()], providers: [ProviderObserver], controllers: [ControllerObserver] })
    class AppModule {}
    ({ app } = await bootstrap(AppModule));
    await runTransitions(app.get(SessionSubject));
    expect(app.get(ProviderObserver).events).toEqual(ALL_TRANSITIONS);
    expect(app.get(ControllerObserver).events).toEqual(ALL_TRANSITIONS);
  });

  it('finds observers in modules that do not import SessionsModule', async () => {
    @Injectable()
    class Elsewhere extends EventLog {
      @OnSessionEvent()
      onSession(event: SessionEvent) {
        this.record(event);
      }
    }
    @Module({ providers: [Elsewhere] })
    class UnrelatedModule {}
    @Module({ imports: [SessionsModule.forRoot(), UnrelatedModule] })
    class AppModule {}
    ({ app } = await bootstrap(AppModule));
    await runTransitions(app.get(SessionSubject));
    expect(app.get(Elsewhere).events).toEqual(ALL_TRANSITIONS);
  });

  it('filters by type, and stacked decorators add up with one call per event', async () => {
    @Injectable()
    class Filtered {
      readonly calls: [string, SessionEventType][] = [];
      @OnSessionEvent('created')
      onCreated(event: SessionEvent) {
        this.calls.push(['onCreated', event.type]);
      }
      @OnSessionEvent('destroyed')
      onDestroyed(event: SessionEvent) {
        this.calls.push(['onDestroyed', event.type]);
      }
      @OnSessionEvent('created')
      @OnSessionEvent('destroyed')
      onBoth(event: SessionEvent) {
        this.calls.push(['onBoth', event.type]);
      }
      @OnSessionEvent()
      @OnSessionEvent('created')
      onAllAndCreated(event: SessionEvent) {
        this.calls.push(['onAllAndCreated', event.type]);
      }
      @OnSessionEvent('created')
      @OnSessionEvent('created')
      onCreatedTwice(event: SessionEvent) {
        this.calls.push(['onCreatedTwice', event.type]);
      }
      notAnObserver(event: SessionEvent) {
        this.calls.push(['notAnObserver', event.type]);
      }
    }
    @Module({ imports: [SessionsModule.forRoot()], providers: [Filtered] })
    class AppModule {}
    ({ app } = await bootstrap(AppModule));
    const subject = app.get(SessionSubject);
    await subject.createSession(10n);
    const afterCreate = [...app.get(Filtered).calls].sort();
    expect(afterCreate).toEqual(
      [
        ['onAllAndCreated', 'created'],
        ['onBoth', 'created'],
        ['onCreated', 'created'],
        ['onCreatedTwice', 'created'],
      ].sort(),
    );
    await subject.destroySession(10n);
    const afterDestroy = app.get(Filtered).calls.slice(afterCreate.length).sort();
    expect(afterDestroy).toEqual(
      [
        ['onAllAndCreated', 'destroyed'],
        ['onBoth', 'destroyed'],
        ['onDestroyed', 'destroyed'],
      ].sort(),
    );
  });

  it('wires an instance reached through useExisting aliases once', async () => {
    @Injectable()
    class Aliased extends EventLog {
      @OnSessionEvent()
      onSession(event: SessionEvent) {
        this.record(event);
      }
    }
    @Module({
      imports: [SessionsModule.forRoot()],
      providers: [Aliased, { provide: 'ALIAS', useExisting: Aliased }, { provide: 'ANOTHER_ALIAS', useExisting: 'ALIAS' }],
    })
    class AppModule {}
    ({ app } = await bootstrap(AppModule));
    await runTransitions(app.get(SessionSubject));
    expect(app.get('ALIAS')).toBe(app.get(Aliased));
    expect(app.get(Aliased).events).toEqual(ALL_TRANSITIONS);
  });

  it('wires inherited decorated methods, and an override without the decorator is no observer', async () => {
    @Injectable()
    class Base extends EventLog {
      @OnSessionEvent()
      inherited(event: SessionEvent) {
        this.record(event);
      }
      @OnSessionEvent()
      overridden(event: SessionEvent) {
        this.record(event);
      }
    }
    @Injectable()
    class Derived extends Base {
      overrideCalls = 0;
      override overridden(): void {
        this.overrideCalls++;
      }
    }
    @Module({ imports: [SessionsModule.forRoot()], providers: [Derived] })
    class AppModule {}
    ({ app } = await bootstrap(AppModule));
    await runTransitions(app.get(SessionSubject));
    expect(app.get(Derived).events).toEqual(ALL_TRANSITIONS);
    expect(app.get(Derived).overrideCalls).toBe(0);
  });

  it('names request-scoped and transient observers in a warning at bootstrap instead of ignoring them silently', async () => {
    @Injectable({ scope: Scope.REQUEST })
    class PerRequest extends EventLog {
      @OnSessionEvent()
      onSession(event: SessionEvent) {
        this.record(event);
      }
    }
    @Injectable({ scope: Scope.TRANSIENT })
    class PerConsumer extends EventLog {
      @OnSessionEvent('created')
      onCreated(event: SessionEvent) {
        this.record(event);
      }
    }
    @Module({ imports: [SessionsModule.forRoot()], providers: [PerRequest, PerConsumer] })
    class AppModule {}
    ({ app, logger } = await bootstrap(AppModule));
    expect(logger.warnings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/@OnSessionEvent\(\) on PerRequest\.onSession is ignored: PerRequest is request-scoped/),
        expect.stringMatching(/@OnSessionEvent\(\) on PerConsumer\.onCreated is ignored: PerConsumer is transient/),
      ]),
    );
    expect(await app.get(SessionSubject).createSession(3n)).toBe(true);
  });

  it('delivers events that another provider raises in its onModuleInit, before SessionsModule initialises', async () => {
    const initOrder: string[] = [];
    @Injectable()
    class Observer extends EventLog {
      @OnSessionEvent()
      onSession(event: SessionEvent) {
        this.record(event);
      }
    }
    /** Deeper in the module tree than SessionsModule, so Nest runs its onModuleInit first. */
    @Injectable()
    class EarlyCreator implements OnModuleInit {
      constructor(private readonly moduleRef: ModuleRef) {}
      async onModuleInit() {
        initOrder.push('EarlyCreator');
        await this.moduleRef.get(SessionSubject, { strict: false }).createSession(42n);
      }
    }
    @Module({ providers: [EarlyCreator] })
    class DeepestModule {}
    @Module({ imports: [DeepestModule] })
    class DeeperModule {}
    @Module({ imports: [DeeperModule] })
    class DeepModule {}
    @Module({ imports: [SessionsModule.forRoot(), DeepModule], providers: [Observer] })
    class AppModule {}
    const original = SessionsModule.prototype.onModuleInit;
    const spy = jest.spyOn(SessionsModule.prototype, 'onModuleInit').mockImplementation(function (this: SessionsModule) {
      initOrder.push('SessionsModule');
      return original.call(this);
    });
    try {
      ({ app } = await bootstrap(AppModule));
    } finally {
      spy.mockRestore();
    }
    expect(initOrder).toEqual(['EarlyCreator', 'SessionsModule']);
    expect(app.get(Observer).events).toEqual([created(42n)]);
  });

  it('an event raised while providers are still being constructed reaches those that exist, and the rest are wired later', async () => {
    @Injectable()
    class BuiltBefore extends EventLog {
      @OnSessionEvent()
      onSession(event: SessionEvent) {
        this.record(event);
      }
    }
    /** Constructed only after the factory below has run, so it cannot have heard that first event. */
    @Injectable()
    class BuiltAfter extends EventLog {
      constructor(@Inject('RESTORED') readonly restored: boolean) {
        super();
      }
      @OnSessionEvent()
      onSession(event: SessionEvent) {
        this.record(event);
      }
    }
    @Module({
      imports: [SessionsModule.forRoot()],
      providers: [
        BuiltBefore,
        BuiltAfter,
        {
          provide: 'RESTORED',
          inject: [SessionSubject, BuiltBefore],
          useFactory: async (subject: SessionSubject) => subject.createSession(1n),
        },
      ],
    })
    class AppModule {}
    ({ app } = await bootstrap(AppModule));
    expect(app.get(BuiltAfter).restored).toBe(true);
    await app.get(SessionSubject).createSession(2n);
    expect(app.get(BuiltBefore).events).toEqual([created(1n), created(2n)]);
    expect(app.get(BuiltAfter).events).toEqual([created(2n)]);
  });

  it('logs a failing observer with Nest\'s Logger, naming its class and method, and still notifies the rest', async () => {
    @Injectable()
    class Failing {
      @OnSessionEvent()
      explode() {
        throw new Error('boom');
      }
      @OnSessionEvent()
      async reject() {
        throw new Error('async boom');
      }
    }
    @Injectable()
    class Healthy extends EventLog {
      @OnSessionEvent()
      onSession(event: SessionEvent) {
        this.record(event);
      }
    }
    @Module({ imports: [SessionsModule.forRoot()], providers: [Failing, Healthy] })
    class AppModule {}
    ({ app, logger } = await bootstrap(AppModule));
    const subject = app.get(SessionSubject);
    expect(await subject.createSession(5n)).toBe(true);
    expect(await subject.hasSession(5n)).toBe(true);
    expect(app.get(Healthy).events).toEqual([created(5n)]);
    expect(logger.errors).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/Session observer Failing\.explode failed on 'created' of session 5: boom/),
        expect.stringMatching(/Session observer Failing\.reject failed on 'created' of session 5: async boom/),
      ]),
    );
  });

  it('rejects an unknown event type, a static method and a getter where the decorator is written', () => {
    expect(() => OnSessionEvent('creatd' as SessionEventType)).toThrow(/must be one of 'created', 'destroyed'/);
    expect(() => {
      class WithStatic {
        @OnSessionEvent()
        static onSession() {}
      }
      return WithStatic;
    }).toThrow(/goes on an instance method; WithStatic\.onSession is not one/);
    expect(() => {
      class WithGetter {
        @OnSessionEvent()
        get onSession() {
          return undefined;
        }
      }
      return WithGetter;
    }).toThrow(/WithGetter\.onSession is not one/);
  });
});
