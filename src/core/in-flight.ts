/**
 * Counts work in flight, so that `drained()` can wait for all of it. A
 * counter, not a set of promises: it runs per transition.
 */
export class InFlight {
  private count = 0;
  private waiters: (() => void)[] = [];
  private readonly forgetOne = (): void => {
    if (--this.count > 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  };

  /** Counts `work` until it settles, either way. */
  track(work: Promise<unknown>): void {
    this.count++;
    work.then(this.forgetOne, this.forgetOne);
  }

  /** Resolves once everything tracked so far, and anything tracked meanwhile, has settled. */
  async drained(): Promise<void> {
    while (this.count > 0) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
}
