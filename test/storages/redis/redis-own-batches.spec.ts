import { OwnBatches } from '../../../src/storages/redis/redis-own-batches';
import { stateOf } from '../../support/promise-state';

describe('OwnBatches (when the reader waits for its batches\' replies rather than read)', () => {
  it('has the reader read at once until a reply shows the stream ending at its position, and while no batch is in flight', async () => {
    const batches = new OwnBatches();
    expect(batches.readNeeded(1000)).toBeUndefined();
    batches.sent();
    expect(batches.readNeeded(1000)).toBeUndefined();
    batches.sent();
    batches.answered(true);
    const waiting = batches.readNeeded(1000);
    expect(waiting).toBeInstanceOf(Promise);
    batches.answered(true);
    // None in flight now: the next read is not held.
    expect(batches.readNeeded(1000)).toBeUndefined();
    batches.mustRead();
    await expect(waiting).resolves.toBeUndefined();
  });

  it('ends the wait when a reply shows other entries, or when told to read', async () => {
    const batches = new OwnBatches();
    batches.sent();
    batches.sent();
    batches.answered(true);
    const first = batches.readNeeded(60_000)!;
    expect(await stateOf(first)).toBe('pending');
    batches.answered(false);
    expect(await stateOf(first)).toBe('fulfilled');
    // A failed or foreign reply cleared the mark: the reader reads at once, though a batch is in flight.
    batches.sent();
    batches.sent();
    expect(batches.readNeeded(60_000)).toBeUndefined();
    batches.answered(true);
    const second = batches.readNeeded(60_000)!;
    expect(await stateOf(second)).toBe('pending');
    batches.mustRead();
    expect(await stateOf(second)).toBe('fulfilled');
  });

  it('ends the wait once a turn passes with no batch in flight, or after its bound', async () => {
    const batches = new OwnBatches();
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    batches.sent();
    batches.sent();
    batches.answered(true);
    let ended = false;
    void batches.readNeeded(60_000)!.then(() => (ended = true));
    batches.answered(true);
    // The callers' next batch goes out in the same turn: the wait goes on.
    batches.sent();
    await turn();
    expect(ended).toBe(false);
    batches.answered(true);
    await turn();
    expect(ended).toBe(true);

    batches.sent();
    batches.sent();
    batches.answered(true);
    await expect(batches.readNeeded(20)).resolves.toBeUndefined();
  });
});
