import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { get, type ClientRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { toAuthKeyId, toSessionId } from 'nestjs-mtproto-sessions';
import request from 'supertest';
import { RecordingLogger } from '../support/recording-logger';
import { within } from '../support/wait-until';
import { AppModule } from '../../sample/app.module.js';

/** 2^53 + 1: a JS number rounds it to 2^53, so it only survives as a bigint. */
const ABOVE_2_53 = '9007199254740993';
const INT64_MAX = '9223372036854775807';
const INT64_MIN = '-9223372036854775808';
/** How long a step that waits on the server may take before the test fails (below jest's 5 s). */
const STEP_TIMEOUT_MS = 2_000;

/** Rejects with a message naming the step if `promise` takes longer than STEP_TIMEOUT_MS. */
function step<T>(promise: Promise<T>, what: string): Promise<T> {
  return within(promise, what, STEP_TIMEOUT_MS);
}

/** The message an id conversion throws, as the sample must pass it on in its 400s. */
function conversionError(convert: () => unknown): string {
  try {
    convert();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected the conversion to throw');
}

/** A client of a server-sent-events stream that collects the `data` of every event. */
class SseClient {
  /** The parsed `data` of every event received so far, in order. */
  readonly received: unknown[] = [];
  private buffer = '';
  private ended: Error | undefined;
  private readonly listeners = new Set<() => void>();

  private constructor(
    private readonly req: ClientRequest,
    readonly response: IncomingMessage,
  ) {
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => this.onChunk(chunk));
    const end = (reason: string) => () => {
      this.ended ??= new Error(`the event stream ${reason}`);
      this.notify();
    };
    response.on('end', end('ended'));
    response.on('error', end('failed'));
    response.on('close', end('closed'));
  }

  /**
   * Opens the stream and resolves once its headers arrive. Nest sends them only
   * after it has subscribed to the route's observable, so from then on no
   * event can be missed.
   */
  static async open(url: string): Promise<SseClient> {
    const req = get(url, { headers: { accept: 'text/event-stream' } });
    try {
      const response = await step(
        new Promise<IncomingMessage>((resolve, reject) => {
          req.once('response', resolve);
          req.once('error', reject);
        }),
        `the headers of ${url}`,
      );
      return new SseClient(req, response);
    } catch (error) {
      req.destroy();
      throw error;
    }
  }

  /** Resolves with the first event (already received or still to come) whose data matches. */
  next(matches: (data: unknown) => boolean, what: string): Promise<unknown> {
    return step(
      new Promise<unknown>((resolve, reject) => {
        const check = () => {
          const found = this.received.find(matches);
          if (found !== undefined || this.ended) {
            this.listeners.delete(check);
            if (found !== undefined) resolve(found);
            else reject(this.ended);
          }
        };
        this.listeners.add(check);
        check();
      }),
      what,
    );
  }

  close(): void {
    this.req.destroy();
  }

  private onChunk(chunk: string): void {
    this.buffer += chunk;
    const blocks = this.buffer.split(/\r?\n\r?\n/);
    // The last block is incomplete until a blank line ends it.
    this.buffer = blocks.pop() ?? '';
    for (const block of blocks) {
      const data = block
        .split(/\r?\n/)
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice('data:'.length).replace(/^ /, ''));
      if (data.length > 0) this.received.push(JSON.parse(data.join('\n')));
    }
    this.notify();
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}

function isEvent(type: string, sessionId: string): (data: unknown) => boolean {
  return (data) => {
    const event = data as { type?: unknown; sessionId?: unknown } | null;
    return event?.type === type && event.sessionId === sessionId;
  };
}

describe('sample app over HTTP', () => {
  let app: INestApplication | undefined;
  let baseUrl: string;
  let logger: RecordingLogger;

  beforeAll(async () => {
    logger = new RecordingLogger();
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    app = moduleRef.createNestApplication({ logger });
    await app.listen(0, '127.0.0.1');
    const { port } = app.getHttpServer().address() as AddressInfo;
    baseUrl = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    await app?.close();
  });

  describe('GET /metrics', () => {
    it('serves the OpenTelemetry metrics in Prometheus format, the live session count among them', async () => {
      await request(baseUrl).put('/sessions/77').expect(201);
      const response = await request(baseUrl).get('/metrics').expect(200);
      expect(response.text).toMatch(/^mtproto_session_count(_sessions)?(\{[^}]*\})? \d+/m);
      expect(response.text).toMatch(/^mtproto_session_transitions(_transitions)?_total\{[^}]*mtproto_session_event_type="created"[^}]*\} \d+/m);
      await request(baseUrl).delete('/sessions/77').expect(204);
    });
  });

  describe('GET /health', () => {
    it('answers 200 with the sessions indicator up, for load balancers and probes', async () => {
      await request(baseUrl).get('/health').expect(200).expect((response) => {
        expect(response.body).toMatchObject({ status: 'ok', info: { sessions: { status: 'up' } } });
      });
    });
  });

  describe('PUT /sessions/:id', () => {
    it('answers 201 for a new session and 200 for an existing one, keeping all 64 bits of the id', async () => {
      await request(baseUrl)
        .put(`/sessions/${ABOVE_2_53}`)
        .expect(201)
        .expect('Content-Type', /json/)
        .expect({ sessionId: ABOVE_2_53, created: true });
      await request(baseUrl).put(`/sessions/${ABOVE_2_53}`).expect(200).expect({ sessionId: ABOVE_2_53, created: false });
      // 2^53 is what 2^53 + 1 becomes as a JS number: it must be a different session.
      await request(baseUrl).get('/sessions/9007199254740992').expect(404);
    });

    it('accepts the ends of the signed 64-bit range', async () => {
      for (const id of [INT64_MAX, INT64_MIN]) {
        await request(baseUrl).put(`/sessions/${id}`).expect(201).expect({ sessionId: id, created: true });
        await request(baseUrl).get(`/sessions/${id}`).expect(200).expect({ sessionId: id, exists: true });
      }
    });
  });

  describe('GET /sessions/:id', () => {
    it('answers 200 for an existing session and 404 for a missing one', async () => {
      await request(baseUrl).get('/sessions/1001').expect(404);
      await request(baseUrl).put('/sessions/1001').expect(201);
      await request(baseUrl).get('/sessions/1001').expect(200).expect({ sessionId: '1001', exists: true });
    });
  });

  describe('DELETE /sessions/:id', () => {
    it('answers 204 with no body when it destroys a session, then 404 when there is nothing left', async () => {
      await request(baseUrl).put('/sessions/2002').expect(201);
      const destroyed = await request(baseUrl).delete('/sessions/2002').expect(204);
      expect(destroyed.text).toBe('');
      await request(baseUrl).get('/sessions/2002').expect(404);
      await request(baseUrl).delete('/sessions/2002').expect(404);
    });

    it('answers 404 for a session that never existed', async () => {
      const response = await request(baseUrl).delete('/sessions/-3003').expect(404);
      expect(response.body).toMatchObject({ statusCode: 404, message: expect.stringContaining('-3003') });
    });
  });

  describe('bad ids', () => {
    const badIds = ['abc', '1.5', '9223372036854775808', '-9223372036854775809', '0x10'];
    const methods = ['put', 'get', 'delete'] as const;

    it.each(methods.flatMap((method) => badIds.map((id) => [method, id] as const)))(
      '%s /sessions/%s answers 400 with the InvalidSessionIdError message',
      async (method, id) => {
        const response = await request(baseUrl)[method](`/sessions/${id}`).expect(400);
        expect(response.body).toMatchObject({ statusCode: 400, message: conversionError(() => toSessionId(id)) });
        expect(response.body.message).toContain(JSON.stringify(id));
      },
    );

    it.each(['xyz', '', '9223372036854775808'])('a bad authKeyId %j answers 400 and creates nothing', async (authKeyId) => {
      const response = await request(baseUrl).put(`/sessions/4004?authKeyId=${authKeyId}`).expect(400);
      expect(response.body).toMatchObject({ statusCode: 400, message: conversionError(() => toAuthKeyId(authKeyId)) });
      expect(response.body.message).toMatch(/^Invalid auth key id /);
      await request(baseUrl).get('/sessions/4004').expect(404);
      // The session id was fine: it is still free under any auth key.
      await request(baseUrl).put('/sessions/4004?authKeyId=1').expect(201);
      await request(baseUrl).delete('/sessions/4004?authKeyId=1').expect(204);
    });
  });

  describe('authKeyId scoping', () => {
    const keyA = '-8070450532247928833';
    const keyB = ABOVE_2_53;

    it('keeps the same session id under two auth keys, and unscoped, as three sessions', async () => {
      await request(baseUrl)
        .put(`/sessions/5005?authKeyId=${keyA}`)
        .expect(201)
        .expect({ sessionId: '5005', authKeyId: keyA, created: true });
      await request(baseUrl)
        .put(`/sessions/5005?authKeyId=${keyB}`)
        .expect(201)
        .expect({ sessionId: '5005', authKeyId: keyB, created: true });
      await request(baseUrl).get('/sessions/5005').expect(404);
      await request(baseUrl).put('/sessions/5005').expect(201).expect({ sessionId: '5005', created: true });

      await request(baseUrl).delete(`/sessions/5005?authKeyId=${keyA}`).expect(204);
      await request(baseUrl).get(`/sessions/5005?authKeyId=${keyA}`).expect(404);
      await request(baseUrl).get(`/sessions/5005?authKeyId=${keyB}`).expect(200).expect({ sessionId: '5005', authKeyId: keyB, exists: true });
      await request(baseUrl).get('/sessions/5005').expect(200).expect({ sessionId: '5005', exists: true });
      await request(baseUrl).put(`/sessions/5005?authKeyId=${keyB}`).expect(200).expect({ sessionId: '5005', authKeyId: keyB, created: false });
    });
  });

  describe('observers', () => {
    it('the log observer logs each session event through Nest\'s Logger', async () => {
      await request(baseUrl).put('/sessions/6006?authKeyId=7').expect(201);
      // PUT answers only once every observer has handled the event, so the line is there already.
      expect(logger.entries).toContainEqual({
        level: 'log',
        message: expect.stringMatching(/^Session 6006 \(auth key 7\) created by instance [\w-]+$/),
        context: 'SessionLogObserver',
      });
    });

    it('GET /sessions/events streams each transition once, as JSON with string ids', async () => {
      const sse = await SseClient.open(`${baseUrl}/sessions/events`);
      try {
        // Also proves that `events` is not taken for a session id by GET /sessions/:id.
        expect(sse.response.statusCode).toBe(200);
        expect(sse.response.headers['content-type']).toMatch(/^text\/event-stream/);

        await request(baseUrl).put(`/sessions/${INT64_MAX}?authKeyId=${ABOVE_2_53}`).expect(201);
        await expect(sse.next(isEvent('created', INT64_MAX), 'the created event')).resolves.toEqual({
          type: 'created',
          sessionId: INT64_MAX,
          authKeyId: ABOVE_2_53,
          origin: expect.any(String),
        });

        // No transition, so no event: the next one must be the destroy.
        await request(baseUrl).put(`/sessions/${INT64_MAX}?authKeyId=${ABOVE_2_53}`).expect(200);
        await request(baseUrl).delete(`/sessions/${INT64_MAX}?authKeyId=${ABOVE_2_53}`).expect(204);
        await sse.next(isEvent('destroyed', INT64_MAX), 'the destroyed event');
        expect(sse.received).toEqual([
          { type: 'created', sessionId: INT64_MAX, authKeyId: ABOVE_2_53, origin: expect.any(String) },
          { type: 'destroyed', sessionId: INT64_MAX, authKeyId: ABOVE_2_53, reason: 'destroyed', origin: expect.any(String) },
        ]);
      } finally {
        sse.close();
      }
    });
  });
});
