import { Body, Controller, Get, Module, Param, Post, Query, type INestApplication } from '@nestjs/common';
import {
  InvalidSessionIdError,
  ParseAuthKeyIdPipe,
  ParseSessionIdPipe,
  toAuthKeyId,
  toSessionId,
  type AuthKeyId,
  type SessionId,
} from 'nestjs-mtproto-sessions';
import request from 'supertest';
import { bootstrap } from '../support/bootstrap';

const INT64_MAX = '9223372036854775807';
const INT64_MIN = '-9223372036854775808';
/** 2^53 + 1: a JS number rounds it to 2^53, so it only survives as a bigint. */
const ABOVE_2_53 = '9007199254740993';

/** What a route received, shown so that a test sees the exact bigint (or its absence). */
const shown = (id: bigint | undefined) => ({ id: id === undefined ? null : id.toString(), type: typeof id });

@Controller()
class IdsController {
  @Get('sessions/:id')
  session(@Param('id', ParseSessionIdPipe) id: SessionId) {
    return shown(id);
  }

  @Get('auth-keys/:id')
  authKey(@Param('id', ParseAuthKeyIdPipe) id: AuthKeyId) {
    return shown(id);
  }

  @Get('scoped')
  scoped(@Query('authKeyId', ParseAuthKeyIdPipe) authKeyId: AuthKeyId | undefined) {
    return shown(authKeyId);
  }

  @Get('scoped-required')
  scopedRequired(@Query('authKeyId', new ParseAuthKeyIdPipe({ optional: false })) authKeyId: AuthKeyId) {
    return shown(authKeyId);
  }

  @Get('maybe-session')
  maybeSession(@Query('sessionId', new ParseSessionIdPipe({ optional: true })) sessionId: SessionId | undefined) {
    return shown(sessionId);
  }

  @Get('session')
  requiredSession(@Query('sessionId', ParseSessionIdPipe) sessionId: SessionId) {
    return shown(sessionId);
  }

  @Post('body')
  body(@Body('id', ParseSessionIdPipe) id: SessionId) {
    return shown(id);
  }
}

@Module({ controllers: [IdsController] })
class AppModule {}

/** The message the core's conversion throws for `value`, which the 400 must carry. */
function conversionError(convert: () => unknown): string {
  try {
    convert();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidSessionIdError);
    return (error as Error).message;
  }
  throw new Error('expected the conversion to throw');
}

describe('ParseSessionIdPipe and ParseAuthKeyIdPipe', () => {
  let app: INestApplication;
  beforeAll(async () => {
    ({ app } = await bootstrap(AppModule));
  });
  afterAll(() => app.close());

  const GOOD = [['0', '0'], ['1', '1'], ['-1', '-1'], [INT64_MAX, INT64_MAX], [INT64_MIN, INT64_MIN], [ABOVE_2_53, ABOVE_2_53], ['+42', '42'], ['007', '7']];
  const BAD = ['abc', '1.5', '1e3', '0x10', '9223372036854775808', '-9223372036854775809', '123456789012345678901', ' 1', '-'];

  it.each(GOOD)('@Param(ParseSessionIdPipe) turns %j into the bigint %s', async (given, expected) => {
    await request(app.getHttpServer()).get(`/sessions/${encodeURIComponent(given)}`).expect(200).expect({ id: expected, type: 'bigint' });
  });

  it.each(GOOD)('@Param(ParseAuthKeyIdPipe) turns %j into the bigint %s', async (given, expected) => {
    await request(app.getHttpServer()).get(`/auth-keys/${encodeURIComponent(given)}`).expect(200).expect({ id: expected, type: 'bigint' });
  });

  it.each(BAD)('a bad session id %j gets a 400 carrying the InvalidSessionIdError message', async (given) => {
    const response = await request(app.getHttpServer()).get(`/sessions/${encodeURIComponent(given)}`).expect(400);
    expect(response.body).toEqual({ statusCode: 400, error: 'Bad Request', message: conversionError(() => toSessionId(given)) });
  });

  it.each(BAD)('a bad auth key id %j gets a 400 carrying the InvalidSessionIdError message', async (given) => {
    const response = await request(app.getHttpServer()).get(`/auth-keys/${encodeURIComponent(given)}`).expect(400);
    expect(response.body).toEqual({ statusCode: 400, error: 'Bad Request', message: conversionError(() => toAuthKeyId(given)) });
  });

  it('ParseAuthKeyIdPipe lets an absent auth key through as undefined (unscoped), but not an empty one', async () => {
    await request(app.getHttpServer()).get('/scoped').expect(200).expect({ id: null, type: 'undefined' });
    await request(app.getHttpServer()).get(`/scoped?authKeyId=${INT64_MIN}`).expect(200).expect({ id: INT64_MIN, type: 'bigint' });
    const response = await request(app.getHttpServer()).get('/scoped?authKeyId=').expect(400);
    expect(response.body.message).toBe(conversionError(() => toAuthKeyId('')));
  });

  it('{ optional } turns absence into a 400 for the auth key and into undefined for the session id', async () => {
    const missingKey = await request(app.getHttpServer()).get('/scoped-required').expect(400);
    expect(missingKey.body.message).toMatch(/^Invalid auth key id undefined: expected a decimal string/);
    await request(app.getHttpServer()).get('/scoped-required?authKeyId=5').expect(200).expect({ id: '5', type: 'bigint' });

    const missingSession = await request(app.getHttpServer()).get('/session').expect(400);
    expect(missingSession.body.message).toMatch(/^Invalid session id undefined: expected a decimal string/);
    await request(app.getHttpServer()).get('/maybe-session').expect(200).expect({ id: null, type: 'undefined' });
    await request(app.getHttpServer()).get(`/maybe-session?sessionId=${INT64_MAX}`).expect(200).expect({ id: INT64_MAX, type: 'bigint' });
  });

  it('takes decimal strings only: an id sent as a JSON number is refused, even a small one', async () => {
    await request(app.getHttpServer()).post('/body').send({ id: ABOVE_2_53 }).expect(201).expect({ id: ABOVE_2_53, type: 'bigint' });
    for (const id of [5, Number(ABOVE_2_53), true, null, ['5']]) {
      const response = await request(app.getHttpServer()).post('/body').send({ id }).expect(400);
      expect(response.body.message).toMatch(/^Invalid session id .*: expected a decimal string/);
    }
  });
});
