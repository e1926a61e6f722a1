import { BadRequestException, Injectable, type PipeTransform } from '@nestjs/common';
import { InvalidSessionIdError, toAuthKeyId, toSessionId, type AuthKeyId, type SessionId } from 'nestjs-mtproto-sessions';

/**
 * Turns a decimal id from the URL into a `bigint`, never a `number` (which
 * would corrupt ids above 2^53). A bad id is the client's fault, so it gets a
 * 400 carrying the library's message, which names the value and the rule.
 */
@Injectable()
export class ParseSessionIdPipe implements PipeTransform<unknown, SessionId> {
  transform(value: unknown): SessionId {
    return badRequestIfInvalid(() => toSessionId(value));
  }
}

/** {@link ParseSessionIdPipe} for the optional `?authKeyId=`: absent means unscoped, present but bad is a 400. */
@Injectable()
export class ParseAuthKeyIdPipe implements PipeTransform<unknown, AuthKeyId | undefined> {
  transform(value: unknown): AuthKeyId | undefined {
    return value === undefined ? undefined : badRequestIfInvalid(() => toAuthKeyId(value));
  }
}

function badRequestIfInvalid(parse: () => bigint): bigint {
  try {
    return parse();
  } catch (error) {
    if (error instanceof InvalidSessionIdError) throw new BadRequestException(error.message);
    throw error;
  }
}
