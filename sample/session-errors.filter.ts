import { Catch, HttpStatus, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { Response } from 'express';
import { SessionLimitError, SessionStorageUnavailableError } from 'nestjs-mtproto-sessions';

/**
 * Both mean "not now": the server is full (`MAX_SESSIONS`) or its storage is
 * unreachable. A client should retry later, so both answer 503.
 */
@Catch(SessionLimitError, SessionStorageUnavailableError)
export class SessionErrorsFilter implements ExceptionFilter {
  catch(error: SessionLimitError | SessionStorageUnavailableError, host: ArgumentsHost): void {
    const body = error instanceof SessionLimitError
      ? { statusCode: HttpStatus.SERVICE_UNAVAILABLE, error: error.name, message: error.message, limit: error.limit, live: error.live }
      : { statusCode: HttpStatus.SERVICE_UNAVAILABLE, error: error.name, message: error.message };
    host.switchToHttp().getResponse<Response>().status(HttpStatus.SERVICE_UNAVAILABLE).json(body);
  }
}
