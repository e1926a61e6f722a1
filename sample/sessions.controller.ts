import { Controller, Delete, Get, HttpCode, HttpStatus, NotFoundException, Param, Put, Query, Res, Sse, UseFilters, type MessageEvent } from '@nestjs/common';
import type { Response } from 'express';
import { ParseAuthKeyIdPipe, ParseSessionIdPipe, SessionSubject, type AuthKeyId, type SessionId } from 'nestjs-mtproto-sessions';
import type { Observable } from 'rxjs';
import { SessionEventStream } from './session-event-stream.js';
import { SessionErrorsFilter } from './session-errors.filter.js';
import { sessionJson, type SessionJson } from './session-json.js';

/**
 * Sessions over HTTP. Ids are decimal strings in the URL; `?authKeyId=` scopes
 * a request to one auth key, as MTProto scopes sessions (without it, the single
 * global scope applies).
 */
@Controller('sessions')
@UseFilters(SessionErrorsFilter)
export class SessionsController {
  constructor(
    private readonly sessions: SessionSubject,
    private readonly stream: SessionEventStream,
  ) {}

  /**
   * Server-sent events of every session created or destroyed. Declared before
   * the `:id` routes: routes match in declaration order, and `GET /sessions/:id`
   * would otherwise take `events` for a (bad) session id.
   */
  @Sse('events')
  events(): Observable<MessageEvent> {
    return this.stream.events$;
  }

  /** How many sessions are live, over all scopes and (with Redis) all instances. */
  @Get()
  async count(): Promise<{ count: number }> {
    return { count: await this.sessions.count() };
  }

  /** 201 when the session is new, 200 when it already existed (PUT is idempotent); 503 past MAX_SESSIONS. */
  @Put(':id')
  async create(
    @Param('id', ParseSessionIdPipe) sessionId: SessionId,
    @Query('authKeyId', ParseAuthKeyIdPipe) authKeyId: AuthKeyId | undefined,
    // passthrough: set only the status and let Nest send the body as usual.
    @Res({ passthrough: true }) response: Response,
  ): Promise<SessionJson & { created: boolean }> {
    // Resolves once every observer has handled the event, so they are ready before we answer.
    const created = await this.sessions.createSession(sessionId, authKeyId);
    response.status(created ? HttpStatus.CREATED : HttpStatus.OK);
    return { ...sessionJson(sessionId, authKeyId), created };
  }

  @Get(':id')
  async find(
    @Param('id', ParseSessionIdPipe) sessionId: SessionId,
    @Query('authKeyId', ParseAuthKeyIdPipe) authKeyId: AuthKeyId | undefined,
  ): Promise<SessionJson & { exists: true }> {
    if (!(await this.sessions.hasSession(sessionId, authKeyId))) throw notFound(sessionId, authKeyId);
    return { ...sessionJson(sessionId, authKeyId), exists: true };
  }

  /** 204 when the session was destroyed, 404 when there was nothing to destroy. */
  @Delete(':id')
  @HttpCode(HttpStatus.NO_CONTENT)
  async destroy(
    @Param('id', ParseSessionIdPipe) sessionId: SessionId,
    @Query('authKeyId', ParseAuthKeyIdPipe) authKeyId: AuthKeyId | undefined,
  ): Promise<void> {
    if (!(await this.sessions.destroySession(sessionId, authKeyId))) throw notFound(sessionId, authKeyId);
  }
}

function notFound(sessionId: SessionId, authKeyId: AuthKeyId | undefined): NotFoundException {
  return new NotFoundException(`No session ${sessionId}${authKeyId === undefined ? '' : ` under auth key ${authKeyId}`}`);
}
