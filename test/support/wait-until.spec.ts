import { Conditions, pollUntil, untilResolves, within } from './wait-until';
import { deferred } from './deferred';
import { stateOf } from './promise-state';

describe('test/support/wait-until', () => {
  it('Conditions: a wait resolves at once when its condition holds, else on the wake() after it comes to hold', async () => {
    const conditions = new Conditions();
    let count = 0;
    await conditions.until(() => true, 'nothing');
    const waiting = conditions.until(() => count >= 2, 'two');
    count = 1;
    conditions.wake();
    expect(await stateOf(waiting)).toBe('pending');
    count = 2;
    conditions.wake();
    await expect(waiting).resolves.toBeUndefined();
  });

  it('Conditions: a wait that never comes to hold rejects after its bound, describing what was seen then', async () => {
    const conditions = new Conditions();
    let seen = 0;
    const waiting = conditions.until(() => false, () => `something; saw ${seen}`, 20);
    seen = 3;
    await expect(waiting).rejects.toThrow('Timed out after 20 ms waiting for something; saw 3');
  });

  it('pollUntil: checks again until the condition holds, or rejects after its bound', async () => {
    let calls = 0;
    await pollUntil(async () => ++calls === 3, 'three calls', { intervalMs: 1 });
    expect(calls).toBe(3);
    await expect(pollUntil(() => false, 'never', { timeoutMs: 20, intervalMs: 5 })).rejects.toThrow('Timed out after 20 ms waiting for never');
    let tries = 0;
    await expect(untilResolves(async () => (++tries < 3 ? Promise.reject(new Error(`try ${tries}`)) : 'third'), 'a third try', { intervalMs: 1 })).resolves.toBe('third');
    await expect(untilResolves(() => Promise.reject(new Error('down')), 'an answer', { timeoutMs: 20, intervalMs: 5 })).rejects.toThrow('Timed out after 20 ms waiting for an answer; last failure: Error: down');
  });

  it('within: passes a promise on, or rejects after its bound', async () => {
    await expect(within(Promise.resolve(7), 'seven')).resolves.toBe(7);
    const never = deferred();
    await expect(within(never.promise, 'a promise that never settles', 20)).rejects.toThrow('Timed out after 20 ms waiting for a promise that never settles');
  });

  it('keeps its bounds on jest fake timers', async () => {
    jest.useFakeTimers();
    try {
      await expect(within(deferred().promise, 'a bound on real timers', 20)).rejects.toThrow('Timed out after 20 ms');
    } finally {
      jest.useRealTimers();
    }
  });
});
