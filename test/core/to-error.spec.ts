import { describeError, toError } from '../../src/core/to-error';

/** Values that String() refuses, each with what its description must still show. */
function unprintables(): [string, unknown, RegExp][] {
  const nullPrototype = Object.assign(Object.create(null) as object, { code: 'E_NULL' });
  const throwingToString = {
    code: 'E_THROWS',
    toString(): string {
      throw new Error('no text');
    },
  };
  const bare = Object.create(null) as object;
  const cyclic: { self?: unknown; toString(): string } = {
    toString(): string {
      throw new Error('no text');
    },
  };
  cyclic.self = cyclic;
  return [
    ['an object with a null prototype', nullPrototype, /null prototype.*E_NULL/],
    ['an object whose toString throws', throwingToString, /E_THROWS/],
    ['an empty object with a null prototype', bare, /null prototype.*cannot be shown as text/],
    ['a cyclic object whose toString throws', cyclic, /an object \(Object\) that cannot be shown as text/],
  ];
}

describe('describeError', () => {
  it('cuts a long text to 500 characters and says how long it was, so one error cannot flood a log line', () => {
    const described = describeError(new Error('x'.repeat(1_000_000)));
    expect(described).toBe(`Error: ${'x'.repeat(493)}… (1000007 characters)`);
    expect(describeError('y'.repeat(501))).toBe(`${'y'.repeat(500)}… (501 characters)`);
    expect(describeError('z'.repeat(500))).toBe('z'.repeat(500));
  });

  it('gives an Error as name: message, as String() does', () => {
    expect(describeError(new TypeError('bad'))).toBe('TypeError: bad');
    expect(describeError(new RangeError(''))).toBe('RangeError');
  });

  it('gives other values their own text', () => {
    expect(describeError('boom')).toBe('boom');
    expect(describeError(42)).toBe('42');
    expect(describeError(undefined)).toBe('undefined');
    expect(describeError(null)).toBe('null');
    expect(describeError(Symbol('s'))).toBe('Symbol(s)');
    expect(describeError(7n)).toBe('7');
  });

  it.each(unprintables())('never throws on %s, and still says what it was', (_name, value, shown) => {
    expect(describeError(value)).toMatch(shown);
  });

  it('never throws on an Error whose message getter throws', () => {
    const error = new Error('hidden');
    Object.defineProperty(error, 'message', {
      get(): string {
        throw new Error('no message');
      },
    });
    expect(describeError(error)).toMatch(/Error/);
  });

  it('never throws on a proxy that refuses everything', () => {
    const refuse = (): never => {
      throw new Error('refused');
    };
    const proxy = new Proxy({}, { get: refuse, getPrototypeOf: refuse, ownKeys: refuse, getOwnPropertyDescriptor: refuse });
    expect(describeError(proxy)).toBe('an object that cannot be shown as text');
  });
});

describe('toError', () => {
  it('returns an Error itself', () => {
    const error = new TypeError('bad');
    expect(toError(error)).toBe(error);
  });

  it('wraps anything else in an Error that describes it, with the value as cause', () => {
    const wrapped = toError('boom');
    expect(wrapped).toBeInstanceOf(Error);
    expect(wrapped.message).toBe('boom');
    expect(wrapped.cause).toBe('boom');
  });

  it.each(unprintables())('never throws on %s, and its message says what it was', (_name, value, shown) => {
    const wrapped = toError(value);
    expect(wrapped.message).toMatch(shown);
    expect(wrapped.cause).toBe(value);
  });

  it('wraps an Error whose message cannot be read, so callers can read the wrapper', () => {
    const error = new Error('hidden');
    Object.defineProperty(error, 'message', {
      get(): string {
        throw new Error('no message');
      },
    });
    const wrapped = toError(error);
    expect(wrapped).not.toBe(error);
    expect(typeof wrapped.message).toBe('string');
    expect(wrapped.cause).toBe(error);
  });
});
