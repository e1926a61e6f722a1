import { Injectable, Module, type INestApplication } from '@nestjs/common';
import { EventEmitterModule, OnEvent } from '@nestjs/event-emitter';
import {
  OnSessionEvent,
  OnSessionEventsMissed,
  SessionEventsMissed,
  SessionsModule,
  type SessionStorage,
  type SessionTransitionSink,
} from 'nestjs-mtproto-sessions';
import { InMemorySessionStorage } from 'nestjs-mtproto-sessions';
import { bootstrap } from '../support/bootstrap';

/** A storage that announces itself, so the test can raise a missed-events notice as a shared storage would. */
class AnnouncingStorage extends InMemorySessionStorage implements SessionStorage {
  givenSink: SessionTransitionSink | undefined;
  override attach(sink: SessionTransitionSink): void {
    this.givenSink = sink;
    super.attach(sink);
  }
}

@Injectable()
class GapListener {
  readonly notices: SessionEventsMissed[] = [];
  readonly heardEvents: unknown[] = [];
  @OnSessionEventsMissed()
  onMissed(notice: SessionEventsMissed) {
    this.notices.push(notice);
  }
  @OnSessionEvent()
  onEvent(event: unknown) {
    this.heardEvents.push(event);
  }
}

@Injectable()
class OnEventGapListener {
  readonly notices: SessionEventsMissed[] = [];
  @OnEvent('session.events-missed')
  onMissed(notice: SessionEventsMissed) {
    this.notices.push(notice);
  }
}

describe('@OnSessionEventsMissed()', () => {
  let app: INestApplication;
  afterEach(() => app.close());

  it('hands a storage\'s missed-events notice to decorated methods and to @OnEvent(\'session.events-missed\'), logging a warning', async () => {
    const storage = new AnnouncingStorage();
    @Module({ imports: [EventEmitterModule.forRoot(), SessionsModule.forRoot(storage)], providers: [GapListener, OnEventGapListener] })
    class AppModule {}
    let logger;
    ({ app, logger } = await bootstrap(AppModule));
    const notice = new SessionEventsMissed('1-0', '5-0', 'instance-a');
    storage.givenSink!.eventsMissed(notice);
    expect(app.get(GapListener).notices).toEqual([notice]);
    expect(app.get(GapListener).heardEvents).toEqual([]);
    await new Promise(setImmediate);
    expect(app.get(OnEventGapListener).notices).toEqual([notice]);
    expect(logger.warnings.join('\n')).toContain('session events after 1-0 were trimmed before instance instance-a read them');
  });

  it('rejects the decorator on a static method', () => {
    expect(() => {
      class Wrong {
        @OnSessionEventsMissed()
        static onMissed() {}
      }
      return Wrong;
    }).toThrow(TypeError);
  });
});
