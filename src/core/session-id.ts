/**
 * An MTProto session id: the TL type `long`, a signed 64-bit integer chosen at
 * random by the client. It is a `bigint` because a JS `number` holds only 53
 * bits and would silently corrupt most ids.
 */
export type SessionId = bigint;

/** An MTProto auth key id, also a TL `long`; it scopes sessions. */
export type AuthKeyId = bigint;

/** Which argument an {@link InvalidSessionIdError} is about. */
export type SessionIdArgument = 'sessionId' | 'authKeyId';

/** The smallest signed 64-bit integer, -2^63: the lowest id. */
export const INT64_MIN = -(2n ** 63n);
/** The largest signed 64-bit integer, 2^63 - 1: the highest id. */
export const INT64_MAX = 2n ** 63n - 1n;
const LONG_BYTES = 8;
// 19 digits hold every 64-bit value; the cap also keeps hostile strings cheap to reject.
const DECIMAL = /^[+-]?\d{1,20}$/;
const SHOWN_CHARS = 40;

/** A value that is not a valid 64-bit id; names the value and the rule it broke. */
export class InvalidSessionIdError extends TypeError {
  override readonly name = 'InvalidSessionIdError';

  constructor(
    /** The rejected value, as given. */
    readonly value: unknown,
    /** The rule the value broke, in words. */
    readonly rule: string,
    readonly argument: SessionIdArgument = 'sessionId',
  ) {
    super(`Invalid ${argument === 'authKeyId' ? 'auth key id' : 'session id'} ${describe(value)}: ${rule}`);
  }
}

/**
 * Turns the forms an id arrives in into a {@link SessionId}: a `bigint`, a
 * safe-integer `number`, a decimal string, or 8 bytes in wire order
 * (little-endian, as in an MTProto message).
 *
 * @throws InvalidSessionIdError for anything else, and for values outside the
 * signed 64-bit range.
 */
export function toSessionId(value: unknown): SessionId {
  return toLong(value, 'sessionId');
}

/** {@link toSessionId} for auth key ids: the same forms and rules. */
export function toAuthKeyId(value: unknown): AuthKeyId {
  return toLong(value, 'authKeyId');
}

function toLong(value: unknown, argument: SessionIdArgument): bigint {
  switch (typeof value) {
    case 'bigint':
      return checkRange(value, value, argument);
    case 'number':
      if (!Number.isSafeInteger(value)) {
        throw new InvalidSessionIdError(
          value,
          'a number must be a safe integer (|n| <= 2^53 - 1); pass larger ids as a bigint, a decimal string or 8 bytes',
          argument,
        );
      }
      return BigInt(value);
    case 'string':
      if (!DECIMAL.test(value)) {
        throw new InvalidSessionIdError(value, 'a string must be a decimal integer of at most 20 digits, such as "-4611686018427387904"', argument);
      }
      return checkRange(BigInt(value), value, argument);
    default:
      if (isBytes(value)) {
        if (value.length !== LONG_BYTES) {
          throw new InvalidSessionIdError(value, `bytes must be exactly ${LONG_BYTES} long (little-endian), got ${value.length}`, argument);
        }
        return new DataView(value.buffer, value.byteOffset, LONG_BYTES).getBigInt64(0, true);
      }
      throw new InvalidSessionIdError(value, 'expected a bigint, a safe-integer number, a decimal string or 8 bytes', argument);
  }
}

/** True for a `bigint` within the signed 64-bit range. */
export function isSessionId(value: unknown): value is SessionId {
  return typeof value === 'bigint' && value >= INT64_MIN && value <= INT64_MAX;
}

/**
 * The check every storage and the subject make on the ids they are given:
 * `bigint` only, so that a `number` that has already lost bits never reaches a
 * store. Returns the error instead of throwing so that callers can reject their
 * promise with it.
 */
export function checkIds(sessionId: unknown, authKeyId: unknown): InvalidSessionIdError | undefined {
  if (!isSessionId(sessionId)) return strictIdError(sessionId, 'sessionId');
  if (authKeyId !== undefined && !isSessionId(authKeyId)) return strictIdError(authKeyId, 'authKeyId');
  return undefined;
}

function strictIdError(value: unknown, argument: SessionIdArgument): InvalidSessionIdError {
  if (typeof value === 'bigint') return new InvalidSessionIdError(value, 'must be within the signed 64-bit range [-2^63, 2^63 - 1]', argument);
  return new InvalidSessionIdError(
    value,
    `must be a bigint (got ${value === null ? 'null' : typeof value}); convert other forms with toSessionId()`,
    argument,
  );
}

function checkRange(id: bigint, given: unknown, argument: SessionIdArgument): SessionId {
  if (id < INT64_MIN || id > INT64_MAX) {
    throw new InvalidSessionIdError(given, 'must be within the signed 64-bit range [-2^63, 2^63 - 1]', argument);
  }
  return id;
}

/** `instanceof`, except that an exotic object (a revoked Proxy, one whose traps throw) is simply not bytes. */
function isBytes(value: unknown): value is Uint8Array {
  try {
    return value instanceof Uint8Array;
  } catch {
    return false;
  }
}

/** The value for an error message; never throws, whatever the value's traps or getters do. */
function describe(value: unknown): string {
  try {
    return describeValue(value);
  } catch {
    return `an object that cannot be inspected`;
  }
}

function describeValue(value: unknown): string {
  switch (typeof value) {
    case 'bigint':
      return `${value}n`;
    case 'string':
      return JSON.stringify(value.length > SHOWN_CHARS ? `${value.slice(0, SHOWN_CHARS)}…` : value);
    case 'number':
    case 'boolean':
    case 'undefined':
      return String(value);
    case 'symbol':
      return value.toString();
    case 'function':
      return 'a function';
    default:
      if (value === null) return 'null';
      if (value instanceof Uint8Array) return `${value.constructor.name}(${value.length})`;
      return `an object (${(value as object).constructor?.name ?? 'null prototype'})`;
  }
}

const CANONICAL_DECIMAL = /^-?(0|[1-9]\d{0,18})$/;

/**
 * A signed 64-bit id written in canonical decimal (no sign on zero, no
 * leading zeros), as storages write ids as text, or undefined for anything
 * else: text read back from a store is never trusted to be an id.
 */
export function parseDecimalId(text: string | undefined): SessionId | undefined {
  if (text === undefined || !CANONICAL_DECIMAL.test(text)) return undefined;
  const value = BigInt(text);
  return isSessionId(value) ? value : undefined;
}
