import type { SessionLogger } from '../../core/session-logger.js';
import { describeError } from '../../core/to-error.js';
import type { Deadlines } from './deadlines.js';
import { bounded } from './redis-failures.js';
import type { Transition } from './redis-transition.js';
import { SWEEP_BATCH } from './scripts/sweep.script.js';

/** What the sweeper drives: a key group's write path. */
export interface Sweepable {
  /** Expires up to one batch of lapsed sessions once Redis is ready: changed is how many. */
  sweep(): Promise<Transition<number>>;
}

/** Sweep batches per tick, so one tick never runs long; what is left waits for the next tick. */
const SWEEP_BATCHES_PER_TICK = 10;

/**
 * Expires one key group's lapsed sessions every `interval` ms, in bounded
 * batches, one tick at a time (a tick still running skips the next). A failing
 * sweep is reported once per outage and retried every tick.
 */
export class RedisSweeper {
  private timer: NodeJS.Timeout | undefined;
  private sweeping = false;
  private failing = false;
  private stopped = false;

  constructor(
    private readonly write: Sweepable,
    private readonly deadlines: Deadlines,
    private readonly logger: SessionLogger,
  ) {}

  start(interval: number): void {
    this.timer ??= setInterval(() => this.tick(), interval);
    this.timer.unref();
  }

  /** Expires every lapsed session now; resolves how many. */
  async expireAll(): Promise<number> {
    let expired = 0;
    for (;;) {
      const count = await this.sweepBatch();
      expired += count;
      if (count < SWEEP_BATCH) return expired;
    }
  }

  /** Stops the ticks; a sweep in flight that then fails because the storage closed is not a failure to report. */
  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
  }

  /** Expires up to one batch; resolves how many once announced here and their observers have settled (within observerTimeout, outside commandTimeout). */
  private async sweepBatch(): Promise<number> {
    const { changed, settled } = await bounded(this.deadlines, this.write.sweep(), 'expireIdleSessions');
    await settled;
    return changed;
  }

  private tick(): void {
    if (this.sweeping) return;
    this.sweeping = true;
    this.sweepSome().then(
      () => {
        this.sweeping = false;
        this.failing = false;
      },
      (error: unknown) => {
        this.sweeping = false;
        // Once per outage, not once per tick.
        if (!this.failing && !this.stopped) this.logger.warn(`Sweeping expired sessions failed, will retry every sweep: ${describeError(error)}`);
        this.failing = true;
      },
    );
  }

  private async sweepSome(): Promise<void> {
    for (let batch = 0; batch < SWEEP_BATCHES_PER_TICK; batch++) {
      if ((await this.sweepBatch()) < SWEEP_BATCH) return;
    }
  }
}
