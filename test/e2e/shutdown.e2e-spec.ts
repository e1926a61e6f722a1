import { Injectable, Module } from '@nestjs/common';
import { InMemorySessionStorage, OnSessionEvent, SessionEvent, SessionsModule, SessionSubject } from 'nestjs-mtproto-sessions';
import { bootstrap, deferred } from './bootstrap';

/** An in-memory storage that records when it is closed. */
class ClosableStorage extends InMemorySessionStorage {
  closed = 0;
  close(): void {
    this.closed++;
  }
}

describe('app.close()', () => {
  it('lets pending notifications finish, then closes the storage', async () => {
    const storage = new ClosableStorage();
    const release = deferred();
    const started = deferred();
    @Injectable()
    class SlowObserver {
      readonly finished: SessionEvent[] = [];
      @OnSessionEvent()
      async onSession(event: SessionEvent) {
        started.resolve();
        await release.promise;
        this.finished.push(event);
      }
    }
    @Module({ imports: [SessionsModule.forRoot(storage)], providers: [SlowObserver] })
    class AppModule {}
    const { app } = await bootstrap(AppModule);
    const observer = app.get(SlowObserver);

    const creating = app.get(SessionSubject).createSession(77n);
    await started.promise;
    let closed = false;
    const closing = app.close().then(() => {
      closed = true;
    });
    // Nothing can be awaited for a step that must not happen: give app.close() a bounded number of
    // event-loop turns to get as far as it can while the observer holds the notification open.
    for (let turn = 0; turn < 20; turn++) await new Promise<void>((resolve) => setImmediate(resolve));
    expect(closed).toBe(false);
    expect(storage.closed).toBe(0);

    release.resolve();
    await closing;
    expect(await creating).toBe(true);
    expect(observer.finished).toEqual([new SessionEvent('created', 77n)]);
    expect(storage.closed).toBe(1);
  });

  it('closes the default in-memory storage without error, and a storage without close() is fine too', async () => {
    @Module({ imports: [SessionsModule.forRoot()] })
    class AppModule {}
    const { app, logger } = await bootstrap(AppModule);
    await app.get(SessionSubject).createSession(1n);
    await app.close();
    expect(logger.errors).toEqual([]);
  });
});
