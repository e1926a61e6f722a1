import { InFlight } from '../../src/core/in-flight';
import { deferred } from '../support/deferred';
import { stateOf } from '../support/promise-state';

describe('InFlight', () => {
  it('drained() resolves at once with nothing tracked', async () => {
    expect(await stateOf(new InFlight().drained())).toBe('fulfilled');
  });

  it('drained() waits for everything tracked, work tracked meanwhile and rejected work included', async () => {
    const inFlight = new InFlight();
    const first = deferred();
    const later = deferred();
    inFlight.track(first.promise);
    const drained = inFlight.drained();
    inFlight.track(later.promise);
    first.reject(new Error('failed work counts as settled'));
    expect(await stateOf(drained)).toBe('pending');
    later.resolve();
    expect(await stateOf(drained)).toBe('fulfilled');
  });
});
