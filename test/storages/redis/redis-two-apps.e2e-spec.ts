import { Injectable, Module, type INestApplication } from '@nestjs/common';
import { OnSessionEvent, SessionEvent, SessionsModule, SessionStorageUnavailableError, SessionSubject } from 'nestjs-mtproto-sessions';
import { RedisSessionStorage } from 'nestjs-mtproto-sessions/redis';
import { bootstrap } from '../../support/bootstrap';
import { eventLine } from '../../support/event-log';
import { describeRedis, startRedisServer, type RedisServer } from '../../support/redis-server';
import { Conditions } from '../../support/wait-until';

@Injectable()
class SessionLog {
  readonly events: SessionEvent[] = [];
  private readonly conditions = new Conditions();

  @OnSessionEvent()
  record(event: SessionEvent) {
    this.events.push(event);
    this.conditions.wake();
  }

  untilCount(count: number): Promise<void> {
    return this.conditions.until(() => this.events.length >= count, () => `${count} events; saw ${this.events.map(eventLine).join(', ')}`);
  }
}

describeRedis('two Nest applications sharing one Redis through SessionsModule.forRoot({ storage: new RedisSessionStorage(...) })', () => {
  let server: RedisServer;
  const apps: INestApplication[] = [];
  let prefix = 0;

  beforeAll(async () => {
    server = await startRedisServer();
  }, 30_000);
  afterAll(() => server?.stop());
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  async function application(keyPrefix: string, instanceId: string): Promise<INestApplication> {
    @Module({
      imports: [SessionsModule.forRoot({ storage: new RedisSessionStorage({ url: server.url, keyPrefix, instanceId }) })],
      providers: [SessionLog],
    })
    class AppModule {}
    const { app } = await bootstrap(AppModule);
    apps.push(app);
    return app;
  }

  it('lets exactly one of 200 concurrent creates of one id across two apps win, and each app hears one created event', async () => {
    const keyPrefix = `two-apps-${process.pid}-${++prefix}`;
    const [a, b] = await Promise.all([application(keyPrefix, 'app-a'), application(keyPrefix, 'app-b')]);
    const id = -0x7edcba9876543210n;
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? a! : b!).get(SessionSubject).createSession(id, 1n)));
    expect(results.filter(Boolean)).toHaveLength(1);
    // The winner's app heard it before createSession resolved; the other app hears it through the stream.
    await Promise.all([a!.get(SessionLog).untilCount(1), b!.get(SessionLog).untilCount(1)]);
    // Nothing more can be awaited that would prove no second event: a destroy after it, heard by both, orders the check.
    await a!.get(SessionSubject).destroySession(id, 1n);
    await Promise.all([a!.get(SessionLog).untilCount(2), b!.get(SessionLog).untilCount(2)]);
    for (const app of [a!, b!]) {
      expect(app.get(SessionLog).events.map(eventLine)).toEqual([`created:${id}@1`, `destroyed:${id}@1`]);
    }
    await expect(b!.get(SessionSubject).hasSession(id, 1n)).resolves.toBe(false);
  });

  it('closes the storage on app.close(): its calls then fail with a typed error, and the other app goes on', async () => {
    const keyPrefix = `two-apps-${process.pid}-${++prefix}`;
    const a = await application(keyPrefix, 'app-a');
    const b = await application(keyPrefix, 'app-b');
    await a.get(SessionSubject).createSession(1n);
    await b.get(SessionLog).untilCount(1);
    const bSubject = b.get(SessionSubject);
    await b.close();
    apps.splice(apps.indexOf(b), 1);
    await expect(bSubject.hasSession(1n)).rejects.toBeInstanceOf(SessionStorageUnavailableError);
    await expect(a.get(SessionSubject).destroySession(1n)).resolves.toBe(true);
  });

  it('boots with an unreachable Redis, warning with the connection error, and its calls fail with the typed error', async () => {
    @Module({ imports: [SessionsModule.forRoot({ storage: new RedisSessionStorage({ url: 'redis://127.0.0.1:1', commandTimeout: 300 }) })] })
    class AppModule {}
    const { app, logger } = await bootstrap(AppModule);
    apps.push(app);
    expect(logger.warnings.join('\n')).toMatch(/session storage is not ready yet \(Redis session storage could not connect: .*ECONNREFUSED/);
    await expect(app.get(SessionSubject).createSession(1n)).rejects.toBeInstanceOf(SessionStorageUnavailableError);
  });
});
