import { Bounded, type CoarseTimer } from './coarse-timer.js';
import type { Notification, ObserverReporter } from './observer-reporter.js';
import type { SessionObserver } from './session-observer.js';

/**
 * Waits for the observers of one notification that returned a promise,
 * without Promise.all: a count of the pending ones, and one deadline for them
 * all on the shared timer. An observer that rejects while waited for is
 * reported; one still pending at the deadline is reported as late and no
 * longer waited for, and whatever it does later is ignored.
 */
export class ObserverCountdown extends Bounded {
  /** The observers still waited for, by slot; a slot is cleared once its observer settles or times out. */
  private readonly waiting: (SessionObserver | undefined)[] = [];
  private pending = 0;
  private resolve: (() => void) | undefined;

  constructor(
    private readonly timer: CoarseTimer<ObserverCountdown>,
    private readonly reporter: ObserverReporter,
    private readonly about: Notification,
  ) {
    super();
  }

  /**
   * Counts in an observer's pending result. Throws, counting nothing, only
   * when the result cannot be adopted (a native promise whose `constructor`
   * getter throws); the caller reports that like a throw from the observer.
   */
  add(observer: SessionObserver, result: PromiseLike<unknown>): void {
    // Promise.resolve adopts a foreign thenable safely: it settles once, and a throwing `then` rejects.
    const adopted = Promise.resolve(result);
    const slot = this.waiting.push(observer) - 1;
    this.pending++;
    adopted.then(
      () => this.settle(slot),
      (error: unknown) => {
        if (this.waiting[slot] !== undefined) this.reporter.failed(observer, this.about, error);
        this.settle(slot);
      },
    );
  }

  /**
   * The promise that settles when every counted observer has, or when the
   * deadline passes; nothing when none was counted. Never rejects. Every
   * count is made before, and every settling happens after, this call.
   */
  start(): Promise<void> | undefined {
    if (this.pending === 0) return undefined;
    return new Promise<void>((resolve) => {
      this.resolve = resolve;
      this.timer.watch(this);
    });
  }

  expire(): void {
    for (let slot = 0; slot < this.waiting.length; slot++) {
      const observer = this.waiting[slot];
      if (observer === undefined) continue;
      this.waiting[slot] = undefined;
      this.reporter.late(observer, this.about);
    }
    this.pending = 0;
    this.resolve?.();
  }

  private settle(slot: number): void {
    if (this.waiting[slot] === undefined) return;
    this.waiting[slot] = undefined;
    if (--this.pending > 0) return;
    this.timer.leave(this);
    this.resolve?.();
  }
}
