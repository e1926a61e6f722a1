/**
 * What a transition did, once this instance has announced its events: the
 * call's result, and what settles once this instance's observers have.
 * Apart, so that a caller bounds the first by commandTimeout and leaves the
 * observers to their own bound (observerTimeout).
 */
export interface Transition<T> {
  readonly changed: T;
  /** Settles once this instance's observers have (its value means nothing). */
  readonly settled: Promise<unknown>;
}

/** The `settled` of a transition with nothing to wait for: one shared promise, so a caller can tell without waiting. */
export const SETTLED: Promise<unknown> = Promise.resolve();

/**
 * The call's result once this instance's observers have settled its events:
 * at once when there is nothing to wait for. For Deadlines.bound's map, so
 * that only the Redis part is bounded by commandTimeout: once Redis has made
 * the change the call reports it, and the observers are bounded by the
 * subject's observerTimeout, which may be longer.
 */
export function changedOnceSettled<T>(transition: Transition<T>): T | Promise<T> {
  const { changed, settled } = transition;
  return settled === SETTLED ? changed : settled.then(() => changed);
}
