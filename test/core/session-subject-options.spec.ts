import { InMemorySessionStorage, SessionSubject } from 'nestjs-mtproto-sessions';

// The option checks of src/core/session-subject-options.ts, through the constructor that runs them.
describe('SessionSubject options', () => {
  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, '1000', null])('refuses observerTimeout %p with a TypeError naming it', (observerTimeout) => {
    expect(() => new SessionSubject(new InMemorySessionStorage(), { observerTimeout: observerTimeout as number })).toThrow(
      expect.objectContaining({ name: 'TypeError', message: expect.stringContaining('observerTimeout') }),
    );
  });

  it('refuses an option it does not know, naming it and the known ones', () => {
    expect(() => new SessionSubject(new InMemorySessionStorage(), { observerTimout: 100 } as never)).toThrow(
      expect.objectContaining({ name: 'TypeError', message: 'SessionSubject has unknown option observerTimout; expected logger, observerTimeout or prepareObservers' }),
    );
  });

  it.each([
    ['a string', 'log'],
    ['a number', 42],
    ['an object without error()', { warn: () => undefined }],
    ['null', null],
  ])('refuses a logger that is %s, naming the option', (_, logger) => {
    expect(() => new SessionSubject(new InMemorySessionStorage(), { logger: logger as never })).toThrow(
      expect.objectContaining({ name: 'TypeError', message: expect.stringContaining('SessionSubject logger must have error(message) and warn(message)') }),
    );
  });

  it('refuses options that are not an object, and a prepareObservers that is not a function', () => {
    expect(() => new SessionSubject(new InMemorySessionStorage(), 'fast' as never)).toThrow(/SessionSubject options must be an object/);
    expect(() => new SessionSubject(new InMemorySessionStorage(), { prepareObservers: true as never })).toThrow(/prepareObservers must be a function/);
  });
});
