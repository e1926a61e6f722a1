import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';
import { InMemorySessionStorage, SessionSubject } from 'nestjs-mtproto-sessions';
import { RedisSessionStorage } from 'nestjs-mtproto-sessions/redis';
import request from 'supertest';
import { EventLog } from '../support/event-log';
import { RecordingLogger } from '../support/recording-logger';
import { AppModule } from '../../sample/app.module.js';
import { sessionsOptionsFromEnv } from '../../sample/session-storage.config.js';

/** Boots the sample with the given environment, as `npm start` would read it. */
async function sampleWith(env: Record<string, string>): Promise<{ app: INestApplication; baseUrl: string; logger: RecordingLogger }> {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const logger = new RecordingLogger();
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    const app = moduleRef.createNestApplication({ logger });
    await app.listen(0, '127.0.0.1');
    const { port } = app.getHttpServer().address() as AddressInfo;
    return { app, baseUrl: `http://127.0.0.1:${port}`, logger };
  } finally {
    process.env = saved;
  }
}

describe('sample app configuration from the environment', () => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('MAX_SESSIONS: past it, PUT answers 503 with the limit, and GET /sessions counts what is live', async () => {
    let baseUrl: string;
    ({ app, baseUrl } = await sampleWith({ MAX_SESSIONS: '2' }));
    await request(baseUrl).put('/sessions/1').expect(201);
    await request(baseUrl).put('/sessions/2?authKeyId=5').expect(201);
    await request(baseUrl).put('/sessions/3').expect(503).expect((response) => {
      expect(response.body).toMatchObject({ error: 'SessionLimitError', limit: 2, live: 2 });
    });
    await request(baseUrl).put('/sessions/1').expect(200);
    await request(baseUrl).get('/sessions').expect(200).expect({ count: 2 });
  });

  it('IDLE_TIMEOUT: an unused session expires and the log observer says so', async () => {
    let baseUrl: string;
    let logger: RecordingLogger;
    ({ app, baseUrl, logger } = await sampleWith({ IDLE_TIMEOUT: '50', INSTANCE_ID: 'sample-1' }));
    const log = new EventLog();
    app.get(SessionSubject).subscribe(log);
    await request(baseUrl).put('/sessions/77').expect(201);
    await log.until(() => log.lines.includes('destroyed:77/expired'), 'the expiry of session 77');
    await request(baseUrl).get('/sessions/77').expect(404);
    expect(logger.entries.map((entry) => entry.message)).toContain('Session 77 expired by instance sample-1');
  });

  it('REDIS_URL selects the Redis storage; bad numbers are refused by name', async () => {
    const fromRedis = sessionsOptionsFromEnv({ REDIS_URL: 'redis://127.0.0.1:1', IDLE_TIMEOUT: '1000' });
    expect(fromRedis.storage).toBeInstanceOf(RedisSessionStorage);
    await fromRedis.storage!.close?.();
    expect(sessionsOptionsFromEnv({}).storage).toBeInstanceOf(InMemorySessionStorage);
    expect(() => sessionsOptionsFromEnv({ MAX_SESSIONS: 'ten' })).toThrow(/MAX_SESSIONS must be a positive integer; got "ten"/);
    expect(() => sessionsOptionsFromEnv({ IDLE_TIMEOUT: '-5' })).toThrow(/IDLE_TIMEOUT/);
  });
});
