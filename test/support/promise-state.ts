export type PromiseState = 'pending' | 'fulfilled' | 'rejected';

/**
 * Whether a promise has settled, after letting the event loop turn `turns`
 * times. For asserting that something must NOT have happened yet, which no
 * event can signal: each turn runs every queued microtask and pending I/O
 * callback, so this is an ordering barrier, not a timed wait.
 */
export async function stateOf(promise: Promise<unknown>, turns = 1): Promise<PromiseState> {
  let state: PromiseState = 'pending';
  promise.then(
    () => {
      state = 'fulfilled';
    },
    () => {
      state = 'rejected';
    },
  );
  for (let turn = 0; turn < turns; turn++) await new Promise<void>((resolve) => setImmediate(resolve));
  return state;
}
