import { Injectable, Module } from '@nestjs/common';
import { OnSessionEvent, SessionEvent, SessionsModule, SessionSubject, type SessionsModuleOptions } from 'nestjs-mtproto-sessions';
import { bootstrap } from '../support/bootstrap';

@Injectable()
class HungObserver {
  calls = 0;
  @OnSessionEvent('created')
  onCreated(): Promise<void> {
    this.calls++;
    return new Promise(() => undefined);
  }
}

@Injectable()
class HealthyObserver {
  readonly heard: string[] = [];
  @OnSessionEvent()
  onSession(event: SessionEvent): void {
    this.heard.push(`${event.type} ${event.sessionId}`);
  }
}

/** Destroys, from inside its created handler, the session it was told about, and awaits it. */
@Injectable()
class SelfDestructingObserver {
  constructor(private readonly sessions: SessionSubject) {}
  @OnSessionEvent('created')
  async onCreated(event: SessionEvent): Promise<void> {
    await this.sessions.destroySession(event.sessionId);
  }
}

describe('observerTimeout in SessionsModule', () => {
  it.each([
    ['forRoot', (options: SessionsModuleOptions) => SessionsModule.forRoot(options)],
    ['forRootAsync', (options: SessionsModuleOptions) => SessionsModule.forRootAsync({ useFactory: () => options })],
  ])('%s: a hung @OnSessionEvent() method is logged by name and holds up neither the call nor app.close()', async (_, register) => {
    @Module({ imports: [register({ observerTimeout: 50 })], providers: [HungObserver, HealthyObserver] })
    class AppModule {}
    const { app, logger } = await bootstrap(AppModule);
    const subject = app.get(SessionSubject);

    expect(await subject.createSession(11n)).toBe(true);
    expect(app.get(HealthyObserver).heard).toEqual(['created 11']);
    expect(logger.errors).toEqual([expect.stringMatching(/HungObserver\.onCreated did not settle 'created' of session 11 within 50 ms/)]);

    void subject.createSession(12n);
    await app.close();
    expect(app.get(HungObserver).calls).toBe(2);
    expect(logger.errors).toHaveLength(2);
  });

  it('an observer that destroys the session it was told about: the others hear created, then destroyed, and nothing waits on itself', async () => {
    @Module({ imports: [SessionsModule.forRoot({ observerTimeout: 60_000 })], providers: [SelfDestructingObserver, HealthyObserver] })
    class AppModule {}
    const { app, logger } = await bootstrap(AppModule);
    expect(await app.get(SessionSubject).createSession(21n)).toBe(true);
    expect(app.get(HealthyObserver).heard).toEqual(['created 21', 'destroyed 21']);
    expect(logger.errors).toEqual([]);
    await app.close();
  });

  it.each([0, -5, 2.5, '100', Number.POSITIVE_INFINITY])('forRoot refuses observerTimeout %p at once, naming it', (observerTimeout) => {
    expect(() => SessionsModule.forRoot({ observerTimeout: observerTimeout as number })).toThrow(
      expect.objectContaining({ name: 'TypeError', message: expect.stringContaining('SessionsModule.forRoot() observerTimeout (ms) must be a positive integer') }),
    );
  });

  it('a forRootAsync factory resolving a bad observerTimeout is refused at bootstrap, naming it', async () => {
    @Module({ imports: [SessionsModule.forRootAsync({ useFactory: () => ({ observerTimeout: -1 }) })] })
    class AppModule {}
    await expect(bootstrap(AppModule)).rejects.toThrow(/observerTimeout \(ms\) must be a positive integer/);
  });
});

describe('forRootAsync options refused at once, naming the option', () => {
  it.each([
    [{ useFactory: 42 }, /useFactory must be a function/],
    [{ useFactory: 'storage' }, /useFactory must be a function/],
    [{ useClass: 42 }, /useClass must be a class/],
    [{ useExisting: 42 }, /useExisting must be an injection token/],
    [{ useFactory: () => ({}), inject: 'ConfigService' }, /inject must be an array/],
    [{ useFactory: () => ({}), imports: {} }, /imports must be an array/],
    [{ useFactory: () => ({}), isGlobal: 'yes' }, /isGlobal must be a boolean/],
    [{ useFactory: () => ({}), useFactroy: () => ({}) }, /unknown option useFactroy/],
    [42, /takes an object such as \{ useFactory, inject \}/],
    [null, /takes an object/],
  ])('forRootAsync(%p)', (options, message) => {
    expect(() => SessionsModule.forRootAsync(options as never)).toThrow(expect.objectContaining({ name: 'TypeError', message: expect.stringMatching(message) }));
  });
});
