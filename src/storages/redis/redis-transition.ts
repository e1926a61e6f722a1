/**
 * What a transition did, once this instance has announced its events: the
 * call's result, and what settles once this instance's observers have.
 * Apart, so that a caller bounds the first by commandTimeout and leaves the
 * observers to their own bound (observerTimeout).
 */
export interface Transition<T> {
  readonly changed: T;
  readonly settled: Promise<void>;
}
