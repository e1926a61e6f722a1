import { SETTLED, type Transition } from '../../../src/storages/redis/redis-transition';
import { TransitionQueue, type QueuedTransition } from '../../../src/storages/redis/redis-transition-queue';

function queue(maxBatch: number, send: (calls: QueuedTransition[]) => void = (calls) => {
  for (const call of calls) call.resolve({ changed: call.create, settled: SETTLED });
}) {
  const batches: string[][] = [];
  const transitions = new TransitionQueue((calls) => {
    batches.push(calls.map((call) => `${call.create ? 'c' : 'd'}${call.member}`));
    send(calls);
  }, maxBatch);
  const add = (create: boolean, member: string): Promise<Transition<boolean>> => transitions.add(create, member, BigInt(member), undefined, 0);
  return { batches, add };
}

describe('TransitionQueue', () => {
  it('sends the calls of one turn together, in order, once its promise reactions have run, and a lone call alone', async () => {
    const { batches, add } = queue(64);
    const first = add(true, '1');
    // A call issued from a promise reaction of the same turn still joins the batch.
    const chained = Promise.resolve().then(() => add(false, '1'));
    const second = add(true, '2');
    expect(batches).toEqual([]);
    await Promise.all([first, second, chained]);
    expect(batches).toEqual([['c1', 'c2', 'd1']]);
    await add(true, '3');
    expect(batches).toEqual([['c1', 'c2', 'd1'], ['c3']]);
  });

  it('splits a turn\'s calls into batches of at most maxBatch, in order', async () => {
    const { batches, add } = queue(2);
    await Promise.all(['1', '2', '3', '4', '5'].map((member) => add(true, member)));
    expect(batches).toEqual([['c1', 'c2'], ['c3', 'c4'], ['c5']]);
  });

  it('fails the calls of a send that throws, and still sends the batches after it', async () => {
    let sends = 0;
    const { add } = queue(2, (calls) => {
      if (sends++ === 0) throw new Error('broken');
      for (const call of calls) call.resolve({ changed: true, settled: SETTLED });
    });
    const outcomes = await Promise.allSettled(['1', '2', '3'].map((member) => add(true, member)));
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['rejected', 'rejected', 'fulfilled']);
    expect((outcomes[0] as PromiseRejectedResult).reason).toEqual(new Error('broken'));
  });
});
