import fc from 'fast-check';
import { InMemorySessionStorage, SessionSubject } from 'nestjs-mtproto-sessions';
import { RecordingLogger } from '../../support/recording-logger';
import { modelKey, opsArbitrary } from '../../support/session-test-helpers';

// SessionSubject: agreement with a model, sequential and concurrent.
describe('SessionSubject', () => {
  describe('property: agrees with a model', () => {
    type Logged = [type: string, sessionId: bigint, authKeyId: bigint | undefined];

    function applyToModel(model: Set<string>, name: string, key: string, transitions: Logged[], logged: Logged): boolean {
      if (name === 'create') {
        if (model.has(key)) return false;
        model.add(key);
        transitions.push(logged);
        return true;
      }
      if (name === 'destroy') {
        if (!model.delete(key)) return false;
        transitions.push(logged);
        return true;
      }
      return model.has(key);
    }

    it('yields results equal to the model and an observer log equal to its transitions, in order', async () => {
      await fc.assert(
        fc.asyncProperty(opsArbitrary(), async (ops) => {
          const propLogger = new RecordingLogger();
          const propSubject = new SessionSubject(new InMemorySessionStorage(), { logger: propLogger });
          const seen: Logged[] = [];
          propSubject.subscribe({
            update: (event) => {
              seen.push([event.type, event.sessionId, event.authKeyId]);
            },
          });
          const model = new Set<string>();
          const transitions: Logged[] = [];
          for (const { name, sessionId, authKeyId } of ops) {
            const key = modelKey(sessionId, authKeyId);
            const expected = applyToModel(model, name, key, transitions, [name === 'create' ? 'created' : 'destroyed', sessionId, authKeyId]);
            const actual =
              name === 'create'
                ? await propSubject.createSession(sessionId, authKeyId)
                : name === 'destroy'
                  ? await propSubject.destroySession(sessionId, authKeyId)
                  : await propSubject.hasSession(sessionId, authKeyId);
            expect(actual).toBe(expected);
          }
          expect(seen).toEqual(transitions);
          expect(propLogger.errors).toEqual([]);
        }),
        { numRuns: 300 },
      );
    });

    it('announces each transition exactly once when batches of operations run concurrently', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(opsArbitrary(12), { maxLength: 8 }), async (batches) => {
          const storageForRun = new InMemorySessionStorage();
          const propSubject = new SessionSubject(storageForRun, { logger: new RecordingLogger() });
          const seen: Logged[] = [];
          // An async observer, so that announcements of one batch overlap.
          propSubject.subscribe({
            update: async (event) => {
              await Promise.resolve();
              seen.push([event.type, event.sessionId, event.authKeyId]);
            },
          });
          const model = new Set<string>();
          for (const batch of batches) {
            // The in-memory storage applies calls in call order, so the model does too.
            const transitions: Logged[] = [];
            const expected = batch.map(({ name, sessionId, authKeyId }) =>
              applyToModel(model, name, modelKey(sessionId, authKeyId), transitions, [name === 'create' ? 'created' : 'destroyed', sessionId, authKeyId]),
            );
            const results = await Promise.all(
              batch.map(({ name, sessionId, authKeyId }) =>
                name === 'create'
                  ? propSubject.createSession(sessionId, authKeyId)
                  : name === 'destroy'
                    ? propSubject.destroySession(sessionId, authKeyId)
                    : propSubject.hasSession(sessionId, authKeyId),
              ),
            );
            expect(results).toEqual(expected);
            // Every transition of the batch was announced exactly once before its call resolved
            // (the order among concurrent announcements is not part of the contract).
            const sortKey = ([type, id, key]: Logged) => `${type}/${key ?? 'unscoped'}/${id}`;
            expect(seen.map(sortKey).sort()).toEqual(transitions.map(sortKey).sort());
            seen.length = 0;
          }
          expect(await storageForRun.count()).toBe(model.size);
        }),
        { numRuns: 200 },
      );
    });
  });

});
