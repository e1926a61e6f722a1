import { BadRequestException } from '@nestjs/common';
import { InvalidSessionIdError, type SessionIdArgument } from '../../core/session-id.js';

/** Options of {@link ParseSessionIdPipe} and {@link ParseAuthKeyIdPipe}. */
export interface ParseIdPipeOptions {
  /** Whether an absent value (`undefined`) passes as `undefined` instead of getting a 400. */
  optional?: boolean;
}

/**
 * What both id pipes do: a decimal string becomes a `bigint`, anything else is
 * a 400 carrying the {@link InvalidSessionIdError}'s message. Strings only, as
 * route params and query values are: an id sent as a JSON number is refused
 * even when small, because most 64-bit ids (random over all 64 bits) do not
 * survive as a number, and a client should learn that on its first request.
 */
export function parseIdOrBadRequest(
  value: unknown,
  argument: SessionIdArgument,
  convert: (value: string) => bigint,
  optional: boolean,
): bigint | undefined {
  if (value === undefined && optional) return undefined;
  try {
    if (typeof value !== 'string') {
      throw new InvalidSessionIdError(value, 'expected a decimal string, such as "-4611686018427387904" (a JSON number cannot hold most 64-bit ids)', argument);
    }
    return convert(value);
  } catch (error) {
    if (error instanceof InvalidSessionIdError) throw new BadRequestException(error.message, { cause: error, description: 'Bad Request' });
    throw error;
  }
}
