import { Injectable, Module, type INestApplication } from '@nestjs/common';
import { EventEmitterModule, OnEvent } from '@nestjs/event-emitter';
import { OnSessionEvent, SessionEvent, SessionsModule, SessionSubject } from 'nestjs-mtproto-sessions';
import { bootstrap } from '../support/bootstrap';

@Injectable()
class OnEventListener {
  readonly heard: [string, SessionEvent][] = [];
  @OnEvent('session.created')
  onCreated(event: SessionEvent) {
    this.heard.push(['session.created', event]);
  }
  @OnEvent('session.destroyed')
  onDestroyed(event: SessionEvent) {
    this.heard.push(['session.destroyed', event]);
  }
}

@Injectable()
class DecoratedObserver {
  readonly events: SessionEvent[] = [];
  @OnSessionEvent()
  onSession(event: SessionEvent) {
    this.events.push(event);
  }
}

describe('with @nestjs/event-emitter in the app', () => {
  let app: INestApplication;
  afterEach(() => app.close());

  it('emits every event as session.created / session.destroyed for @OnEvent handlers, beside @OnSessionEvent ones', async () => {
    @Module({ imports: [EventEmitterModule.forRoot(), SessionsModule.forRoot()], providers: [OnEventListener, DecoratedObserver] })
    class AppModule {}
    ({ app } = await bootstrap(AppModule));
    const subject = app.get(SessionSubject);
    const id = 2n ** 63n - 1n;
    await subject.createSession(id, 9n);
    await subject.createSession(id, 9n);
    await subject.destroySession(id, 9n);
    // The default in-memory storage announces transitions itself, naming itself as their origin.
    const origin = expect.any(String) as string;
    const expected = [{ ...new SessionEvent('created', id, 9n), origin }, { ...new SessionEvent('destroyed', id, 9n), origin }];
    expect(app.get(OnEventListener).heard).toEqual([
      ['session.created', expected[0]],
      ['session.destroyed', expected[1]],
    ]);
    expect(app.get(DecoratedObserver).events).toEqual(expected);
  });

  it('works the same without EventEmitterModule', async () => {
    @Module({ imports: [SessionsModule.forRoot()], providers: [DecoratedObserver] })
    class AppModule {}
    ({ app } = await bootstrap(AppModule));
    await app.get(SessionSubject).createSession(1n);
    expect(app.get(DecoratedObserver).events).toEqual([{ ...new SessionEvent('created', 1n), origin: expect.any(String) }]);
  });
});
