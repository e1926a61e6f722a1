import fc from 'fast-check';
import { InMemorySessionStorage, InvalidSessionIdError, type SessionStorage } from 'nestjs-mtproto-sessions';
import { INT64_MAX, INT64_MIN } from '../../../src/core/session-id';
import { modelKey, opsArbitrary } from '../../support/session-test-helpers';

const KEY_A = 0x0123456789abcdefn;
const KEY_B = -0x0123456789abcdefn;

describe('InMemorySessionStorage', () => {
  let storage: InMemorySessionStorage;

  beforeEach(() => {
    storage = new InMemorySessionStorage();
  });

  it('implements SessionStorage with count()', () => {
    const asInterface: SessionStorage = storage;
    expect(typeof asInterface.count).toBe('function');
  });

  describe('boolean results', () => {
    it('createSession resolves true for a new session and false for an existing one', async () => {
      await expect(storage.createSession(1n)).resolves.toBe(true);
      await expect(storage.createSession(1n)).resolves.toBe(false);
      await expect(storage.createSession(2n)).resolves.toBe(true);
    });

    it('hasSession resolves false before creation, true after, false after destruction', async () => {
      await expect(storage.hasSession(7n)).resolves.toBe(false);
      await storage.createSession(7n);
      await expect(storage.hasSession(7n)).resolves.toBe(true);
      await storage.destroySession(7n);
      await expect(storage.hasSession(7n)).resolves.toBe(false);
    });

    it('destroySession resolves true for an existing session and false when there is nothing to destroy', async () => {
      await expect(storage.destroySession(3n)).resolves.toBe(false);
      await storage.createSession(3n);
      await expect(storage.destroySession(3n)).resolves.toBe(true);
      await expect(storage.destroySession(3n)).resolves.toBe(false);
    });

    it('a destroyed session can be created again', async () => {
      await storage.createSession(3n);
      await storage.destroySession(3n);
      await expect(storage.createSession(3n)).resolves.toBe(true);
      await expect(storage.hasSession(3n)).resolves.toBe(true);
    });

    it.each([
      ['-2^63', INT64_MIN],
      ['2^63 - 1', INT64_MAX],
      ['0', 0n],
      ['-1', -1n],
      ['2^53 + 1 (not representable as a number)', 2n ** 53n + 1n],
    ])('handles the id %s exactly', async (_label, id) => {
      await expect(storage.createSession(id)).resolves.toBe(true);
      await expect(storage.hasSession(id)).resolves.toBe(true);
      await expect(storage.count()).resolves.toBe(1);
      await expect(storage.destroySession(id)).resolves.toBe(true);
      await expect(storage.count()).resolves.toBe(0);
    });

    it('does not confuse ids that are equal as numbers', async () => {
      // Both round to 9007199254740992 as a number; a store keyed by number would merge them.
      await storage.createSession(2n ** 53n);
      await expect(storage.hasSession(2n ** 53n + 1n)).resolves.toBe(false);
      await expect(storage.createSession(2n ** 53n + 1n)).resolves.toBe(true);
      await expect(storage.count()).resolves.toBe(2);
    });
  });

  describe('auth-key scoping', () => {
    it('the same session id under two auth keys is two sessions', async () => {
      await expect(storage.createSession(1n, KEY_A)).resolves.toBe(true);
      await expect(storage.createSession(1n, KEY_B)).resolves.toBe(true);
      await expect(storage.createSession(1n, KEY_A)).resolves.toBe(false);
      await expect(storage.count()).resolves.toBe(2);
    });

    it('a session under one auth key is not visible under another', async () => {
      await storage.createSession(1n, KEY_A);
      await expect(storage.hasSession(1n, KEY_A)).resolves.toBe(true);
      await expect(storage.hasSession(1n, KEY_B)).resolves.toBe(false);
    });

    it('the unscoped scope is separate from every auth key', async () => {
      await storage.createSession(1n);
      await expect(storage.hasSession(1n, KEY_A)).resolves.toBe(false);
      await expect(storage.hasSession(1n, 0n)).resolves.toBe(false);
      await expect(storage.createSession(1n, 0n)).resolves.toBe(true);
      await storage.createSession(2n, KEY_A);
      await expect(storage.hasSession(2n)).resolves.toBe(false);
      await expect(storage.count()).resolves.toBe(3);
    });

    it('auth key 0n is a scope of its own, not the unscoped one', async () => {
      await storage.createSession(5n, 0n);
      await expect(storage.hasSession(5n)).resolves.toBe(false);
      await expect(storage.destroySession(5n)).resolves.toBe(false);
      await expect(storage.hasSession(5n, 0n)).resolves.toBe(true);
    });

    it('destroying in one scope leaves the others', async () => {
      await storage.createSession(1n);
      await storage.createSession(1n, KEY_A);
      await storage.createSession(1n, KEY_B);

      await expect(storage.destroySession(1n, KEY_A)).resolves.toBe(true);
      await expect(storage.hasSession(1n, KEY_A)).resolves.toBe(false);
      await expect(storage.hasSession(1n, KEY_B)).resolves.toBe(true);
      await expect(storage.hasSession(1n)).resolves.toBe(true);
      await expect(storage.count()).resolves.toBe(2);

      await expect(storage.destroySession(1n)).resolves.toBe(true);
      await expect(storage.hasSession(1n, KEY_B)).resolves.toBe(true);
      await expect(storage.hasSession(1n)).resolves.toBe(false);
      await expect(storage.count()).resolves.toBe(1);
    });

    it('destroying a missing session under an auth key that has other sessions changes nothing', async () => {
      await storage.createSession(1n, KEY_A);
      await expect(storage.destroySession(2n, KEY_A)).resolves.toBe(false);
      await expect(storage.count()).resolves.toBe(1);
      await expect(storage.hasSession(1n, KEY_A)).resolves.toBe(true);
    });

    it('an auth key emptied of sessions can take new ones', async () => {
      await storage.createSession(1n, KEY_A);
      await storage.destroySession(1n, KEY_A);
      await expect(storage.count()).resolves.toBe(0);
      await expect(storage.createSession(1n, KEY_A)).resolves.toBe(true);
      await expect(storage.hasSession(1n, KEY_A)).resolves.toBe(true);
      await expect(storage.count()).resolves.toBe(1);
    });

    it('edge values work as auth keys', async () => {
      await expect(storage.createSession(INT64_MAX, INT64_MIN)).resolves.toBe(true);
      await expect(storage.createSession(INT64_MAX, INT64_MAX)).resolves.toBe(true);
      await expect(storage.hasSession(INT64_MAX, INT64_MIN)).resolves.toBe(true);
      await expect(storage.destroySession(INT64_MAX, INT64_MIN)).resolves.toBe(true);
      await expect(storage.hasSession(INT64_MAX, INT64_MAX)).resolves.toBe(true);
    });
  });

  describe('count()', () => {
    it('is 0 for a new storage', async () => {
      await expect(storage.count()).resolves.toBe(0);
    });

    it('counts live sessions over all scopes, ignoring failed creates and destroys', async () => {
      await storage.createSession(1n);
      await storage.createSession(1n);
      await storage.createSession(2n);
      await storage.createSession(1n, KEY_A);
      await storage.createSession(1n, KEY_A);
      await storage.createSession(2n, KEY_A);
      await storage.createSession(1n, KEY_B);
      await expect(storage.count()).resolves.toBe(5);
      await storage.destroySession(9n);
      await storage.destroySession(9n, KEY_A);
      await storage.destroySession(1n, 12345n);
      await expect(storage.count()).resolves.toBe(5);
      await storage.destroySession(2n, KEY_A);
      await storage.destroySession(2n, KEY_A);
      await expect(storage.count()).resolves.toBe(4);
    });
  });

  describe('bad ids', () => {
    const badSessionIds: [string, unknown][] = [
      ['the number 1', 1],
      ['the number 0', 0],
      ['2^63 (out of range)', 2n ** 63n],
      ['-2^63 - 1 (out of range)', INT64_MIN - 1n],
      ['the string "1"', '1'],
      ['8 bytes', new Uint8Array(8)],
      ['null', null],
      ['undefined', undefined],
    ];
    const badAuthKeyIds: [string, unknown][] = [
      ['the number 1', 1],
      ['2^63 (out of range)', 2n ** 63n],
      ['the string "1"', '1'],
      ['null', null],
    ];
    const methods = ['createSession', 'hasSession', 'destroySession'] as const;

    type Call = (sessionId: unknown, authKeyId?: unknown) => Promise<boolean>;
    function call(method: (typeof methods)[number]): Call {
      return storage[method].bind(storage) as unknown as Call;
    }

    async function seed(): Promise<void> {
      await storage.createSession(1n);
      await storage.createSession(1n, 1n);
    }

    async function expectUnchanged(): Promise<void> {
      await expect(storage.count()).resolves.toBe(2);
      await expect(storage.hasSession(1n)).resolves.toBe(true);
      await expect(storage.hasSession(1n, 1n)).resolves.toBe(true);
    }

    describe.each(methods)('%s', (method) => {
      it.each(badSessionIds)('rejects the session id %s without a synchronous throw, changing nothing', async (_label, bad) => {
        await seed();
        let promise: Promise<boolean> | undefined;
        expect(() => {
          promise = call(method)(bad);
        }).not.toThrow();
        expect(promise).toBeInstanceOf(Promise);
        const error = await promise!.then(
          () => undefined,
          (reason: unknown) => reason,
        );
        expect(error).toBeInstanceOf(InvalidSessionIdError);
        expect((error as InvalidSessionIdError).argument).toBe('sessionId');
        expect((error as InvalidSessionIdError).value).toBe(bad);
        await expectUnchanged();
      });

      it('rejects the session id 1 also under a valid auth key, changing nothing', async () => {
        await seed();
        await expect(call(method)(1, 1n)).rejects.toBeInstanceOf(InvalidSessionIdError);
        await expectUnchanged();
      });

      it.each(badAuthKeyIds)('rejects the auth key id %s without a synchronous throw, changing nothing', async (_label, bad) => {
        await seed();
        let promise: Promise<boolean> | undefined;
        expect(() => {
          promise = call(method)(2n, bad);
        }).not.toThrow();
        const error = await promise!.then(
          () => undefined,
          (reason: unknown) => reason,
        );
        expect(error).toBeInstanceOf(InvalidSessionIdError);
        expect((error as InvalidSessionIdError).argument).toBe('authKeyId');
        expect((error as InvalidSessionIdError).value).toBe(bad);
        await expectUnchanged();
        // Nothing was created under any scope for the id it was given.
        await expect(storage.hasSession(2n)).resolves.toBe(false);
      });
    });

    it('destroySession with an unsafe number does not destroy the session it rounds to', async () => {
      // 2^53 + 1 as a number is 2^53: a storage that converted numbers would hit the wrong session.
      await storage.createSession(2n ** 53n);
      await expect(call('destroySession')(2 ** 53 + 1)).rejects.toBeInstanceOf(InvalidSessionIdError);
      await expect(storage.hasSession(2n ** 53n)).resolves.toBe(true);
    });

    it('the error message names the rule for a number', async () => {
      await expect(call('createSession')(1)).rejects.toThrow(/must be a bigint \(got number\)/);
      await expect(call('createSession')(2n ** 63n)).rejects.toThrow(/signed 64-bit range/);
      await expect(call('createSession')(1n, 'x')).rejects.toThrow(/auth key id "x"/);
    });
  });

  describe('concurrency', () => {
    it('of 100 concurrent createSession calls for one id exactly one resolves true', async () => {
      const results = await Promise.all(Array.from({ length: 100 }, () => storage.createSession(42n)));
      expect(results.filter((created) => created)).toHaveLength(1);
      expect(results.filter((created) => !created)).toHaveLength(99);
      await expect(storage.count()).resolves.toBe(1);
    });

    it('of 100 concurrent createSession calls for one scoped id exactly one resolves true', async () => {
      const results = await Promise.all(Array.from({ length: 100 }, () => storage.createSession(42n, KEY_A)));
      expect(results.filter((created) => created)).toHaveLength(1);
      await expect(storage.count()).resolves.toBe(1);
    });

    it('of 100 concurrent destroySession calls for one id exactly one resolves true', async () => {
      await storage.createSession(42n);
      await storage.createSession(42n, KEY_A);
      const results = await Promise.all(Array.from({ length: 100 }, () => storage.destroySession(42n)));
      expect(results.filter((destroyed) => destroyed)).toHaveLength(1);
      await expect(storage.hasSession(42n)).resolves.toBe(false);
      await expect(storage.count()).resolves.toBe(1);
    });

    it('of 100 concurrent destroySession calls for one scoped id exactly one resolves true', async () => {
      await storage.createSession(42n, KEY_A);
      const results = await Promise.all(Array.from({ length: 100 }, () => storage.destroySession(42n, KEY_A)));
      expect(results.filter((destroyed) => destroyed)).toHaveLength(1);
      await expect(storage.count()).resolves.toBe(0);
    });

    it('interleaved concurrent creates and destroys alternate: each succeeds only on a real transition', async () => {
      const results = await Promise.all(
        Array.from({ length: 100 }, (_unused, i) => (i % 2 === 0 ? storage.createSession(1n) : storage.destroySession(1n))),
      );
      // Each method works synchronously before resolving, so calls take effect in call order.
      expect(results.every((changed) => changed)).toBe(true);
      await expect(storage.hasSession(1n)).resolves.toBe(false);
    });
  });

  describe('property: agrees with a Set model', () => {
    it('keeps every result and count() equal to the model over random operations', async () => {
      await fc.assert(
        fc.asyncProperty(opsArbitrary(), async (ops) => {
          const store = new InMemorySessionStorage();
          const model = new Set<string>();
          for (const { name, sessionId, authKeyId } of ops) {
            const key = modelKey(sessionId, authKeyId);
            if (name === 'create') {
              const expected = !model.has(key);
              model.add(key);
              expect(await store.createSession(sessionId, authKeyId)).toBe(expected);
            } else if (name === 'destroy') {
              expect(await store.destroySession(sessionId, authKeyId)).toBe(model.delete(key));
            } else {
              expect(await store.hasSession(sessionId, authKeyId)).toBe(model.has(key));
            }
            expect(await store.count()).toBe(model.size);
          }
        }),
        { numRuns: 300 },
      );
    });

    it('agrees with the model when each batch of operations runs concurrently', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(opsArbitrary(12), { maxLength: 8 }), async (batches) => {
          const store = new InMemorySessionStorage();
          const model = new Set<string>();
          for (const batch of batches) {
            // Concurrent calls on one key must still give exactly one success per real transition:
            // the model applies them in call order, which the in-memory store also does.
            const expected = batch.map(({ name, sessionId, authKeyId }) => {
              const key = modelKey(sessionId, authKeyId);
              if (name === 'create') {
                const isNew = !model.has(key);
                model.add(key);
                return isNew;
              }
              if (name === 'destroy') return model.delete(key);
              return model.has(key);
            });
            const actual = await Promise.all(
              batch.map(({ name, sessionId, authKeyId }) =>
                name === 'create'
                  ? store.createSession(sessionId, authKeyId)
                  : name === 'destroy'
                    ? store.destroySession(sessionId, authKeyId)
                    : store.hasSession(sessionId, authKeyId),
              ),
            );
            expect(actual).toEqual(expected);
            expect(await store.count()).toBe(model.size);
          }
        }),
        { numRuns: 200 },
      );
    });
  });
});
