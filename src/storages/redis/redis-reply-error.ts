import { quoteForeign } from '../../core/to-error.js';

/**
 * Redis answered a script with a reply of a shape the script never gives:
 * another program wrote the storage's keys, or a server that is not Redis
 * answered. Not a connection failure: retrying will not help.
 */
export class RedisReplyError extends Error {
  override readonly name = 'RedisReplyError';

  constructor(
    /** What the script does, as in the failed call's message. */
    readonly script: string,
    /** The reply as received. */
    readonly reply: unknown,
  ) {
    super(`Redis answered ${script} with ${quoteForeign(reply)}, not the reply its script gives`);
  }
}
