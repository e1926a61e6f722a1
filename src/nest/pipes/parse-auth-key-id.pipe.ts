import { Injectable, Optional, type PipeTransform } from '@nestjs/common';
import { toAuthKeyId, type AuthKeyId } from '../../core/session-id.js';
import { parseIdOrBadRequest, type ParseIdPipeOptions } from './parse-id.js';

/**
 * {@link ParseSessionIdPipe} for auth key ids, as in `@Query('authKeyId',
 * ParseAuthKeyIdPipe)`. Optional by default, as the auth key is throughout the
 * API: absent means unscoped (`undefined`), present but bad is a 400.
 * `new ParseAuthKeyIdPipe({ optional: false })` requires it.
 */
@Injectable()
export class ParseAuthKeyIdPipe implements PipeTransform<unknown, AuthKeyId | undefined> {
  private readonly optional: boolean;

  constructor(@Optional() options?: ParseIdPipeOptions) {
    this.optional = options?.optional ?? true;
  }

  transform(value: unknown): AuthKeyId | undefined {
    return parseIdOrBadRequest(value, 'authKeyId', toAuthKeyId, this.optional);
  }
}
