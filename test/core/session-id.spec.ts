import fc from 'fast-check';
import { InvalidSessionIdError, isSessionId, toAuthKeyId, toSessionId } from 'nestjs-mtproto-sessions';
import { INT64_MAX, INT64_MIN } from '../../src/core/session-id';

const converters = [
  { name: 'toSessionId', convert: toSessionId, argument: 'sessionId', label: 'session id' },
  { name: 'toAuthKeyId', convert: toAuthKeyId, argument: 'authKeyId', label: 'auth key id' },
] as const;

function le(...bytes: number[]): Uint8Array {
  return Uint8Array.from(bytes);
}

/** Runs `fn`, expects it to throw, and returns what it threw. */
function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw, got a return');
}

describe.each(converters)('$name', ({ convert, argument, label }) => {
  describe('accepts', () => {
    it.each([
      ['0n', 0n],
      ['1n', 1n],
      ['-1n', -1n],
      ['-2^63 (lower edge)', INT64_MIN],
      ['2^63 - 1 (upper edge)', INT64_MAX],
      ['2^53 + 1 (beyond number precision)', 2n ** 53n + 1n],
    ])('the bigint %s unchanged', (_label, value) => {
      const id = convert(value);
      expect(typeof id).toBe('bigint');
      expect(id).toBe(value);
    });

    it.each([
      [0, 0n],
      [-0, 0n],
      [1, 1n],
      [-1, -1n],
      [123456789, 123456789n],
      [Number.MAX_SAFE_INTEGER, 2n ** 53n - 1n],
      [Number.MIN_SAFE_INTEGER, -(2n ** 53n - 1n)],
    ])('the safe-integer number %p as %p', (value, expected) => {
      const id = convert(value);
      expect(typeof id).toBe('bigint');
      expect(id).toBe(expected);
    });

    it.each([
      ['0', 0n],
      ['-0', 0n],
      ['1', 1n],
      ['+1', 1n],
      ['-1', -1n],
      ['+9223372036854775807', INT64_MAX],
      ['9223372036854775807', INT64_MAX],
      ['-9223372036854775808', INT64_MIN],
      ['-4611686018427387904', -(2n ** 62n)],
      ['9007199254740993', 2n ** 53n + 1n],
      ['007', 7n],
      ['00000000000000000001', 1n],
    ])('the decimal string %p as %p', (value, expected) => {
      expect(convert(value)).toBe(expected);
    });

    it.each([
      ['01 00 00 00 00 00 00 00', le(1, 0, 0, 0, 0, 0, 0, 0), 1n],
      ['00 00 00 00 00 00 00 01', le(0, 0, 0, 0, 0, 0, 0, 1), 1n << 56n],
      ['ff ff ff ff ff ff ff ff', le(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), -1n],
      ['00 00 00 00 00 00 00 80', le(0, 0, 0, 0, 0, 0, 0, 0x80), INT64_MIN],
      ['ff ff ff ff ff ff ff 7f', le(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f), INT64_MAX],
      ['08 07 06 05 04 03 02 01', le(8, 7, 6, 5, 4, 3, 2, 1), 0x0102030405060708n],
      ['00 00 00 00 00 00 00 00', le(0, 0, 0, 0, 0, 0, 0, 0), 0n],
    ])('8 little-endian bytes %s as a Uint8Array', (_hex, bytes, expected) => {
      expect(convert(bytes)).toBe(expected);
    });

    it('8 little-endian bytes as a Buffer', () => {
      expect(convert(Buffer.from('0100000000000000', 'hex'))).toBe(1n);
      expect(convert(Buffer.from('ffffffffffffffff', 'hex'))).toBe(-1n);
      expect(convert(Buffer.from('0807060504030201', 'hex'))).toBe(0x0102030405060708n);
      const written = Buffer.alloc(8);
      written.writeBigInt64LE(-0x1234567890abcdefn);
      expect(convert(written)).toBe(-0x1234567890abcdefn);
    });

    it('a Uint8Array view with a non-zero byteOffset, reading only its own 8 bytes', () => {
      // Guard bytes before and after the view: reading from offset 0 or past the end would pick them up.
      const backing = le(0xaa, 0xbb, 0x02, 0, 0, 0, 0, 0, 0, 0x01, 0xcc, 0xdd);
      const view = backing.subarray(2, 10);
      expect(view.byteOffset).toBe(2);
      expect(view.length).toBe(8);
      expect(convert(view)).toBe(0x0100000000000002n);
    });

    it('a Buffer slice with a non-zero byteOffset', () => {
      const backing = Buffer.from('eeee' + 'feffffffffffffff' + 'eeee', 'hex');
      const slice = backing.subarray(2, 10);
      expect(slice.byteOffset).toBeGreaterThan(0);
      expect(convert(slice)).toBe(-2n);
    });

    it('does not keep a reference to the bytes (a later change of the array does not change the id)', () => {
      const bytes = le(5, 0, 0, 0, 0, 0, 0, 0);
      const id = convert(bytes);
      bytes[0] = 9;
      expect(id).toBe(5n);
    });
  });

  describe('rejects with InvalidSessionIdError', () => {
    const bad: [string, unknown, RegExp][] = [
      ['bigint 2^63 (one above the range)', 2n ** 63n, /signed 64-bit range/],
      ['bigint -2^63 - 1 (one below the range)', -(2n ** 63n) - 1n, /signed 64-bit range/],
      ['bigint 2^64', 2n ** 64n, /signed 64-bit range/],
      ['unsafe number 2^53', 2 ** 53, /safe integer/],
      ['unsafe number -(2^53)', -(2 ** 53), /safe integer/],
      ['non-integer number 1.5', 1.5, /safe integer/],
      ['NaN', Number.NaN, /safe integer/],
      ['Infinity', Number.POSITIVE_INFINITY, /safe integer/],
      ['-Infinity', Number.NEGATIVE_INFINITY, /safe integer/],
      ['empty string', '', /decimal integer/],
      ['string with a leading space', ' 1', /decimal integer/],
      ['string with a trailing space', '1 ', /decimal integer/],
      ['string with a trailing newline', '1\n', /decimal integer/],
      ['hex string', '0x10', /decimal integer/],
      ['exponent string', '1e3', /decimal integer/],
      ['fraction string', '1.0', /decimal integer/],
      ['sign only', '-', /decimal integer/],
      ['double sign', '--1', /decimal integer/],
      ['bigint literal string', '1n', /decimal integer/],
      ['non-ASCII digits', '١٢٣', /decimal integer/],
      ['21-digit string', '1'.repeat(21), /decimal integer/],
      ['21-digit string of leading zeros', '0'.repeat(20) + '1', /decimal integer/],
      ['very long string', '9'.repeat(10_000), /decimal integer/],
      ['decimal string 2^63', '9223372036854775808', /signed 64-bit range/],
      ['decimal string -2^63 - 1', '-9223372036854775809', /signed 64-bit range/],
      ['20-digit string above the range', '99999999999999999999', /signed 64-bit range/],
      ['7 bytes', new Uint8Array(7), /exactly 8 long/],
      ['9 bytes', new Uint8Array(9), /exactly 8 long/],
      ['0 bytes', new Uint8Array(0), /exactly 8 long/],
      ['a 16-byte Buffer', Buffer.alloc(16), /exactly 8 long/],
      ['null', null, /expected a bigint/],
      ['undefined', undefined, /expected a bigint/],
      ['a plain object', { value: 1n }, /expected a bigint/],
      ['an array of 8 numbers', [1, 0, 0, 0, 0, 0, 0, 0], /expected a bigint/],
      ['an 8-byte ArrayBuffer', new ArrayBuffer(8), /expected a bigint/],
      ['an Int8Array of 8', new Int8Array(8), /expected a bigint/],
      ['a boxed bigint', Object(1n), /expected a bigint/],
      ['true', true, /expected a bigint/],
      ['false', false, /expected a bigint/],
      ['a symbol', Symbol('id'), /expected a bigint/],
      ['a function', () => 1n, /expected a bigint/],
    ];

    it.each(bad)('%s', (_label, value, rule) => {
      const error = thrownBy(() => convert(value));
      expect(error).toBeInstanceOf(InvalidSessionIdError);
      expect(error).toBeInstanceOf(TypeError);
      const invalid = error as InvalidSessionIdError;
      expect(invalid.name).toBe('InvalidSessionIdError');
      expect(invalid.value).toBe(value);
      expect(invalid.argument).toBe(argument);
      expect(invalid.message).toMatch(rule);
      expect(invalid.message).toContain(label);
    });

    it.each<[string, unknown, string]>([
      ['an out-of-range bigint', 2n ** 63n, '9223372036854775808n'],
      ['a non-integer number', 1.5, '1.5'],
      ['NaN', Number.NaN, 'NaN'],
      ['a hex string', '0x10', '"0x10"'],
      ['an empty string', '', '""'],
      ['a 7-byte array', new Uint8Array(7), 'Uint8Array(7)'],
      ['a 9-byte Buffer', Buffer.alloc(9), 'Buffer(9)'],
      ['null', null, 'null'],
      ['undefined', undefined, 'undefined'],
      ['true', true, 'true'],
      ['an object', new (class Custom {})(), 'Custom'],
    ])('names the value in the message: %s', (_label, value, shown) => {
      const error = thrownBy(() => convert(value)) as InvalidSessionIdError;
      expect(error).toBeInstanceOf(InvalidSessionIdError);
      expect(error.message).toContain(shown);
    });

    it('keeps the message short for a long string', () => {
      const error = thrownBy(() => convert('x'.repeat(10_000))) as InvalidSessionIdError;
      expect(error).toBeInstanceOf(InvalidSessionIdError);
      expect(error.message.length).toBeLessThan(400);
      expect(error.value).toBe('x'.repeat(10_000));
    });
  });

  describe('properties', () => {
    it('round-trips every 64-bit value through its decimal string', () => {
      fc.assert(
        fc.property(fc.bigInt({ min: INT64_MIN, max: INT64_MAX }), (id) => {
          expect(convert(id.toString())).toBe(id);
          expect(convert(id)).toBe(id);
        }),
        { numRuns: 1000 },
      );
    });

    it('round-trips every 64-bit value through 8 little-endian bytes', () => {
      fc.assert(
        fc.property(fc.bigInt({ min: INT64_MIN, max: INT64_MAX }), (id) => {
          const bytes = Buffer.alloc(8);
          bytes.writeBigInt64LE(id);
          expect(convert(bytes)).toBe(id);
          expect(convert(new Uint8Array(bytes))).toBe(id);
        }),
        { numRuns: 1000 },
      );
    });

    it('round-trips through bytes at any offset inside a larger buffer', () => {
      fc.assert(
        fc.property(fc.bigInt({ min: INT64_MIN, max: INT64_MAX }), fc.nat({ max: 16 }), fc.nat({ max: 16 }), (id, before, after) => {
          const backing = Buffer.alloc(before + 8 + after, 0xa5);
          backing.writeBigInt64LE(id, before);
          expect(convert(backing.subarray(before, before + 8))).toBe(id);
        }),
      );
    });

    it('accepts a safe-integer number as the same value', () => {
      fc.assert(
        fc.property(fc.maxSafeInteger(), (n) => {
          expect(convert(n)).toBe(BigInt(n));
        }),
      );
    });

    it('rejects every bigint outside the range', () => {
      fc.assert(
        fc.property(
          fc.oneof(fc.bigInt({ min: INT64_MAX + 1n, max: 2n ** 80n }), fc.bigInt({ min: -(2n ** 80n), max: INT64_MIN - 1n })),
          (id) => {
            expect(() => convert(id)).toThrow(InvalidSessionIdError);
            expect(() => convert(id.toString())).toThrow(InvalidSessionIdError);
          },
        ),
      );
    });
  });
});

describe('isSessionId', () => {
  it.each([0n, 1n, -1n, INT64_MIN, INT64_MAX])('is true for the bigint %p', (value) => {
    expect(isSessionId(value)).toBe(true);
  });

  it.each<[string, unknown]>([
    ['2^63', 2n ** 63n],
    ['-2^63 - 1', INT64_MIN - 1n],
    ['the number 1', 1],
    ['the number 0', 0],
    ['the string "1"', '1'],
    ['8 bytes', new Uint8Array(8)],
    ['null', null],
    ['undefined', undefined],
    ['a boxed bigint', Object(1n)],
  ])('is false for %s', (_label, value) => {
    expect(isSessionId(value)).toBe(false);
  });

  it('agrees with the range over arbitrary bigints', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }), (value) => {
        expect(isSessionId(value)).toBe(value >= INT64_MIN && value <= INT64_MAX);
      }),
    );
  });
});

describe('InvalidSessionIdError', () => {
  it('is a TypeError with its own name and the value, rule and argument it was given', () => {
    const error = new InvalidSessionIdError(1, 'some rule', 'authKeyId');
    expect(error).toBeInstanceOf(TypeError);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('InvalidSessionIdError');
    expect(error.value).toBe(1);
    expect(error.rule).toBe('some rule');
    expect(error.argument).toBe('authKeyId');
    expect(error.message).toBe('Invalid auth key id 1: some rule');
  });

  it('is about the session id by default', () => {
    const error = new InvalidSessionIdError('x', 'a rule');
    expect(error.argument).toBe('sessionId');
    expect(error.message).toBe('Invalid session id "x": a rule');
  });
});
