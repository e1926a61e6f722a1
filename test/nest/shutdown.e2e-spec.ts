import { Injectable, Module } from '@nestjs/common';
import { InMemorySessionStorage, OnSessionEvent, SessionEvent, SessionsModule, SessionSubject } from 'nestjs-mtproto-sessions';
import { bootstrap } from '../support/bootstrap';
import { deferred } from '../support/deferred';
import { stateOf } from '../support/promise-state';

/** An in-memory storage that records when it is closed. */
class ClosableStorage extends InMemorySessionStorage {
  closed = 0;
  override close(): void {
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
    const closing = app.close();
    // app.close() gets 20 event-loop turns to go as far as it can while the observer holds on.
    expect(await stateOf(closing, 20)).toBe('pending');
    expect(storage.closed).toBe(0);

    release.resolve();
    await closing;
    expect(await creating).toBe(true);
    expect(observer.finished).toEqual([new SessionEvent('created', 77n, undefined, { origin: storage.instanceId })]);
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
