import { SessionStorageTimeoutError, SessionStorageUnavailableError } from 'nestjs-mtproto-sessions';
import { Deadlines } from '../../../src/storages/redis/deadlines';
import { deferred } from '../../support/deferred';

/** Settles when `promise` does, recording when (on the fake clock) and how. */
function watch<T>(promise: Promise<T>): { settledAt?: number; value?: T; error?: unknown } {
  const seen: { settledAt?: number; value?: T; error?: unknown } = {};
  promise.then(
    (value) => Object.assign(seen, { settledAt: performance.now(), value }),
    (error: unknown) => Object.assign(seen, { settledAt: performance.now(), error }),
  );
  return seen;
}

const describeFailure = (error: unknown): Error => new SessionStorageUnavailableError(`failed: ${String(error)}`);

describe('Deadlines (Redis call bounds)', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.clearAllTimers();
    jest.useRealTimers();
  });

  it('never fails a call before its bound, whenever it started', async () => {
    const deadlines = new Deadlines(2000);
    const calls: { startedAt: number; seen: ReturnType<typeof watch> }[] = [];
    // Calls start every 20 ms over a second, so some start late in a tick of the shared timer.
    for (let i = 0; i < 50; i++) {
      calls.push({ startedAt: performance.now(), seen: watch(deadlines.bound(new Promise<boolean>(() => undefined), 'hasSession', describeFailure)) });
      await jest.advanceTimersByTimeAsync(20);
    }
    // The last started at 980 ms: settled by 3480 ms.
    await jest.advanceTimersByTimeAsync(3000);
    for (const { startedAt, seen } of calls) {
      expect(seen.error).toBeInstanceOf(SessionStorageTimeoutError);
      expect((seen.error as Error).message).toMatch(/^Session storage hasSession did not settle within 2000 ms/);
      expect(seen.settledAt! - startedAt).toBeGreaterThanOrEqual(2000);
      expect(seen.settledAt! - startedAt).toBeLessThanOrEqual(2500);
    }
    expect(deadlines.timedOutRecently).toBe(true);
    await jest.advanceTimersByTimeAsync(2000);
    expect(deadlines.timedOutRecently).toBe(false);
  });

  it('settles like the work when it settles in time, mapped, or with its failure described', async () => {
    const deadlines = new Deadlines(100);
    const ok = deferred<number>();
    const bad = deferred<number>();
    const mapped = watch(deadlines.bound(ok.promise, 'hasSession', describeFailure, (score) => score > 0));
    const failed = watch(deadlines.bound(bad.promise, 'createSession', describeFailure));
    ok.resolve(5);
    bad.reject('boom');
    await jest.advanceTimersByTimeAsync(500);
    expect(mapped.value).toBe(true);
    expect(failed.error).toEqual(new SessionStorageUnavailableError('failed: boom'));
    expect(deadlines.timedOutRecently).toBe(false);
    // Nothing settled is kept waiting: the shared timer stopped.
    expect(jest.getTimerCount()).toBe(0);
  });

  it('close() rejects every pending call with its error, refuses new ones, and ignores work that settles later', async () => {
    const deadlines = new Deadlines(100);
    const late = deferred<boolean>();
    const pending = watch(deadlines.bound(late.promise, 'destroySession', describeFailure));
    const closed = new SessionStorageUnavailableError('closed for the test');
    deadlines.close(closed);
    await jest.advanceTimersByTimeAsync(0);
    expect(pending.error).toBe(closed);
    late.resolve(true);
    const refused = watch(deadlines.bound(Promise.reject(new Error('never seen')), 'hasSession', describeFailure));
    await jest.advanceTimersByTimeAsync(500);
    expect(pending.value).toBeUndefined();
    expect(refused.error).toBe(closed);
    expect(jest.getTimerCount()).toBe(0);
  });
});
