import { Controller, Get, Injectable, Module, type INestApplication } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { OnSessionEventsMissed, SessionsModule, SessionSubject, type SessionStorage } from 'nestjs-mtproto-sessions';
import { RedisSessionStorage } from 'nestjs-mtproto-sessions/redis';
import { SessionsHealthIndicator } from 'nestjs-mtproto-sessions/terminus';
import request from 'supertest';
import { bootstrap } from '../support/bootstrap';
import { describeRedis, startRedisServer, type RedisServer } from '../support/redis-server';
import { pollUntil, untilResolves } from '../support/wait-until';

@Controller('health')
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly sessions: SessionsHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.sessions.isHealthy()]);
  }
}

/** Resolves when the storage reports that events were missed, as it does after Redis restarts empty. */
@Injectable()
class MissedEvents {
  private resolveHeard!: () => void;
  readonly heard = new Promise<void>((resolve) => (this.resolveHeard = resolve));

  @OnSessionEventsMissed()
  onMissed(): void {
    this.resolveHeard();
  }
}

async function healthApp(storage?: SessionStorage): Promise<INestApplication> {
  @Module({
    imports: [TerminusModule.forRoot({ logger: false }), SessionsModule.forRoot(storage === undefined ? {} : { storage })],
    controllers: [HealthController],
    providers: [SessionsHealthIndicator, MissedEvents],
  })
  class HealthModule {}
  return (await bootstrap(HealthModule)).app;
}

describe('SessionsHealthIndicator on the default in-memory storage', () => {
  it('is up, with no details to report', async () => {
    const app = await healthApp();
    try {
      const response = await request(app.getHttpServer()).get('/health').expect(200);
      expect(response.body).toMatchObject({ status: 'ok', info: { sessions: { status: 'up' } } });
    } finally {
      await app.close();
    }
  });
});

describeRedis('SessionsHealthIndicator: a terminus health endpoint over a RedisSessionStorage', () => {
  let server: RedisServer;
  let app: INestApplication | undefined;

  beforeAll(async () => {
    server = await startRedisServer();
  }, 30_000);
  afterAll(() => server?.stop());
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('is up while Redis is, down (503, naming the failure) while it is away, and up again once it is back, reporting the missed events', async () => {
    const storage = new RedisSessionStorage({ url: server.url, keyPrefix: `health-${process.pid}`, commandTimeout: 500 });
    app = await healthApp(storage);
    await app.get(SessionSubject).createSession(1n);
    await storage.localReadsReady();
    // The create resolves from its reply; the replica's lease starts once the reader first heard from Redis, maybe later.
    await pollUntil(() => storage.healthDetails().localReadsWithinLease === true, 'the replica to answer locally');

    const up = await request(app.getHttpServer()).get('/health').expect(200);
    expect(up.body.info.sessions).toEqual({ status: 'up', connected: true, localReadsWithinLease: true, readerLagSeconds: 0, eventsMissed: 0, lastEventsMissedAt: null });

    await server.stop();
    const down = await request(app.getHttpServer()).get('/health').expect(503);
    expect(down.body.status).toBe('error');
    expect(down.body.error.sessions).toMatchObject({ status: 'down', message: expect.stringMatching(/^SessionStorage(Unavailable|Timeout)Error: /) });

    // Back, but empty (no persistence): the reader notices the history is gone and says so.
    await server.restart();
    // The client reconnects on its own schedule, which has no event of ours to await: ping() is retried, bounded.
    await untilResolves(() => storage.ping(), 'Redis to answer the storage again', { intervalMs: 50 });
    await app.get(MissedEvents).heard;
    const back = await request(app.getHttpServer()).get('/health').expect(200);
    expect(back.body.info.sessions).toMatchObject({ status: 'up', connected: true, eventsMissed: 1, lastEventsMissedAt: expect.any(String) });
    expect(Date.parse(back.body.info.sessions.lastEventsMissedAt)).not.toBeNaN();
  }, 30_000);
});
