import fc from 'fast-check';
import { INT64_MAX, INT64_MIN } from '../../src/core/session-id';

/** A 64-bit id spread over the whole signed range (and so over key groups); distinct for distinct i (an odd multiplier mod 2^64). */
export function spreadId(i: number, multiplier = 0x9e3779b97f4a7c15n): bigint {
  return BigInt.asIntN(64, BigInt(i + 1) * multiplier);
}

/** Ids from a small pool (so that operations collide), with the 64-bit edges always in it. */
export function idPoolArbitrary(): fc.Arbitrary<bigint[]> {
  return fc
    .uniqueArray(fc.bigInt({ min: INT64_MIN, max: INT64_MAX }), { minLength: 1, maxLength: 4 })
    .map((random) => [...new Set([INT64_MIN, INT64_MAX, 0n, -1n, ...random])]);
}

export type OpName = 'create' | 'has' | 'destroy';

export interface Op {
  name: OpName;
  sessionId: bigint;
  authKeyId: bigint | undefined;
}

/**
 * A random sequence of operations on ids drawn from a small pool, each with an
 * optional auth key drawn from a small pool too (so that scopes collide and
 * differ).
 */
export function opsArbitrary(maxLength = 60): fc.Arbitrary<Op[]> {
  return fc.tuple(idPoolArbitrary(), idPoolArbitrary()).chain(([sessionIds, authKeyIds]) =>
    fc.array(
      fc.record({
        name: fc.constantFrom<OpName>('create', 'has', 'destroy'),
        sessionId: fc.constantFrom(...sessionIds),
        authKeyId: fc.option(fc.constantFrom(...authKeyIds), { nil: undefined }),
      }),
      { maxLength },
    ),
  );
}

/** The model's key of a session: its scope and id. */
export function modelKey(sessionId: bigint, authKeyId: bigint | undefined): string {
  return `${authKeyId ?? 'unscoped'}:${sessionId}`;
}
