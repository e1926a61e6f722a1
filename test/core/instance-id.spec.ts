import { resolveInstanceId } from '../../src/core/instance-id';

describe('resolveInstanceId', () => {
  it('keeps a given id', () => {
    expect(resolveInstanceId('a', 'Owner')).toBe('a');
  });

  it('makes a random UUID when none is given', () => {
    const first = resolveInstanceId(undefined, 'Owner');
    expect(first).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(resolveInstanceId(undefined, 'Owner')).not.toBe(first);
  });

  it.each([
    ['an empty string', '', /Owner instanceId must be a non-empty string; got ""/],
    ['a number', 7, /Owner instanceId must be a non-empty string; got number/],
    ['null', null, /Owner instanceId must be a non-empty string; got null/],
  ])('refuses %s with a TypeError naming the owner and option', (_name, value, message) => {
    expect(() => resolveInstanceId(value, 'Owner')).toThrow(TypeError);
    expect(() => resolveInstanceId(value, 'Owner')).toThrow(message);
  });
});
