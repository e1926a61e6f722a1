import { Injectable, Optional, type PipeTransform } from '@nestjs/common';
import { toSessionId, type SessionId } from '../../core/session-id.js';
import { parseIdOrBadRequest, type ParseIdPipeOptions } from './parse-id.js';

/**
 * Turns a session id given as a decimal string (a route param, a query value)
 * into a `bigint`, never a `number`, which would corrupt ids above 2^53:
 * `@Param('id', ParseSessionIdPipe) id: SessionId`. A bad or missing id gets a
 * 400 whose message is the `InvalidSessionIdError`'s, naming the value and the
 * rule; `new ParseSessionIdPipe({ optional: true })` lets a missing one through
 * as `undefined`.
 */
@Injectable()
export class ParseSessionIdPipe implements PipeTransform<unknown, SessionId> {
  private readonly optional: boolean;

  constructor(@Optional() options?: ParseIdPipeOptions) {
    this.optional = options?.optional ?? false;
  }

  transform(value: unknown): SessionId {
    // Only `optional` lets `undefined` through, and then the declared type is the caller's to widen.
    return parseIdOrBadRequest(value, 'sessionId', toSessionId, this.optional) as SessionId;
  }
}
