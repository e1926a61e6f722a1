import { randomBytes } from 'node:crypto';
import type { SessionLogger } from '../../core/session-logger.js';
import type { Deadlines } from './deadlines.js';
import { localNow } from './redis-clock.js';
import type { RedisConnection } from './redis-connection.js';
import { bounded } from './redis-failures.js';
import { RedisKeyLayoutError } from './redis-key-layout-error.js';
import type { RedisSessionKeys } from './redis-keys.js';
import type { RedisQuotaPool } from './redis-quota-pool.js';
import { quotaMessages } from './redis-storage.messages.js';
import { groupCheckScript } from './scripts/group-check.script.js';
import { groupDecideScript } from './scripts/group-decide.script.js';
import { groupRecountScript } from './scripts/group-recount.script.js';
import type { Transfer } from './scripts/pool-ledger.lua.js';
import type { TransferDecided } from './scripts/pool-settle.script.js';
import { POOL_STATUS, TRANSFER } from './scripts/quota-status.js';

/** How often each instance runs a healing pass (ms). */
export const HEAL_INTERVAL_MS = 1000;
/**
 * How long a recount may hold the pool, as a share of commandTimeout: it
 * takes three steps (hold, the groups, finish), a few milliseconds unless
 * Redis is slow; one cut off leaves its hold to lapse, and takes wait that
 * long at most.
 */
const RECOUNT_HOLD = 0.5;
const OPERATION = 'healing the session limit';

export interface QuotaHealerSettings {
  readonly maxSessions: number;
  readonly shards: number;
  readonly commandTimeout: number;
}

/**
 * Brings back, by itself, the part of the shared limit that faults took (see
 * the design at the top of redis-session-quota.ts). Every instance runs one
 * pass every HEAL_INTERVAL_MS (a pass still running skips the next); each
 * step is one atomic script, so passes of several instances may run at once.
 *
 * A pass reads the pool's ledger; recounts when the pool or a key group is
 * not counted (data lost, a new prefix, an earlier version's data); else
 * asks each transfer's group whether it received it (or, once its fence has
 * passed, refuses it for good) and settles what was decided: a grant its
 * group refused goes back to the pool.
 */
export class RedisQuotaHealer {
  private timer: NodeJS.Timeout | undefined;
  private healing = false;
  private failing = false;
  private stopped = false;
  private recounting: Promise<boolean> | undefined;

  constructor(
    private readonly pool: RedisQuotaPool,
    private readonly connection: RedisConnection,
    private readonly deadlines: Deadlines,
    private readonly groups: readonly RedisSessionKeys[],
    private readonly settings: QuotaHealerSettings,
    private readonly logger: SessionLogger,
  ) {}

  /** Runs a pass now and then every HEAL_INTERVAL_MS. */
  start(): void {
    if (this.timer !== undefined || this.stopped) return;
    this.timer = setInterval(() => this.tick(), HEAL_INTERVAL_MS);
    this.timer.unref();
    this.tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
  }

  /** One healing pass; rejects when Redis could not be asked (the next pass tries again). */
  async heal(): Promise<void> {
    // Not before the layout check has passed (an instance of another layout must not touch the pool), and
    // quietly until the first connection: that wait is the calls' to report, not every pass's.
    if (this.connection.waiting) await this.connection.afterReady(() => Promise.resolve());
    const state = await this.bounded(this.pool.read());
    if (state.status === POOL_STATUS.frozen) return;
    if (state.status === POOL_STATUS.uncounted) {
      await this.recount();
      return;
    }
    const checked = await Promise.allSettled(this.groups.map((keys) => this.bounded(this.connection.run(groupCheckScript, keys, { incarnation: state.incarnation, low: state.low }))));
    const failed = checked.find((check) => check.status === 'rejected');
    // A recount needs every group: while one does not answer, the others' transfers are still settled.
    if (failed === undefined && checked.some((check) => check.status === 'fulfilled' && check.value === 0)) {
      await this.recount();
      return;
    }
    await this.settle(state.incarnation, state.transfers);
    if (failed !== undefined) throw failed.reason;
  }

  /**
   * Recounts the pool: resolves true once done, false when another
   * instance's recount holds the pool or this one lost its hold. One at a
   * time per instance; instances take turns through the pool's hold.
   */
  recount(): Promise<boolean> {
    this.recounting ??= this.recountOnce().finally(() => {
      this.recounting = undefined;
    });
    return this.recounting;
  }

  private tick(): void {
    if (this.healing || this.stopped) return;
    this.healing = true;
    this.heal().then(
      () => {
        this.healing = false;
        this.failing = false;
      },
      (error: unknown) => {
        this.healing = false;
        // Refused for good: every call says so already, and this instance must leave the prefix's data alone.
        if (error instanceof RedisKeyLayoutError) this.stop();
        // Once per outage, not once per pass.
        if (!this.failing && !this.stopped) this.logger.warn(quotaMessages.healFailed(error, HEAL_INTERVAL_MS));
        this.failing = true;
      },
    );
  }

  /**
   * Holds the pool (no transfer starts), reads each group's quota while it
   * decides every transfer to it in the ledger for good (and tells it the
   * ledger's incarnation), and sets the pool to maxSessions minus their sum.
   */
  private async recountOnce(): Promise<boolean> {
    const id = randomBytes(6).toString('hex');
    const start = await this.bounded(this.pool.startRecount(id, localNow() + RECOUNT_HOLD * this.settings.commandTimeout));
    if (!start.started) return false;
    let finished = false;
    try {
      const { incarnation, low, transfers } = start;
      const quotas = await Promise.all(this.groups.map((keys, group) => {
        const toGroup = transfers.filter((transfer) => transfer.group === group);
        return this.bounded(this.connection.run(groupRecountScript, keys, { incarnation, low, transfers: toGroup }));
      }));
      const held = quotas.reduce((total, quota) => total + quota, 0);
      const { maxSessions, shards } = this.settings;
      const finish = await this.bounded(this.pool.finishRecount({ id, held, maxSessions, shards, transfers: transfers.map((transfer) => transfer.id) }));
      if (finish.status === POOL_STATUS.mismatch) {
        this.logger.error(quotaMessages.layoutChanged(this.pool.keys, shards));
        this.stop();
        return false;
      }
      if (finish.status !== POOL_STATUS.done) return false;
      finished = true;
      // A new prefix's first count is no news.
      if (!start.newPrefix || held > 0) this.logger.warn(quotaMessages.recounted(this.pool.keys, held, maxSessions, finish.pool));
      return true;
    } finally {
      if (!finished) await this.bounded(this.pool.abandonRecount(id)).catch(() => undefined);
    }
  }

  /**
   * Asks each transfer's group to decide it, and settles in the ledger those
   * decided; resolves those still pending. Rejects, after settling what was
   * decided, if a group could not be asked.
   */
  private async settle(incarnation: string, transfers: readonly Transfer[]): Promise<Transfer[]> {
    const pending: Transfer[] = [];
    const decided: TransferDecided[] = [];
    const asked = await Promise.allSettled(transfers.map(async (transfer) => {
      const keys = this.groups[transfer.group];
      // A group this layout does not have: the layout check refuses such a mix; left for the instance that wrote it.
      if (keys === undefined) return void pending.push(transfer);
      const { outcome, amount } = await this.bounded(this.connection.run(groupDecideScript, keys, { incarnation, id: transfer.id, fence: transfer.fence }));
      if (outcome === TRANSFER.pending) pending.push(transfer);
      else decided.push({ id: transfer.id, outcome, amount });
    }));
    const { refused } = await this.bounded(this.pool.settle(decided));
    if (refused > 0) this.logger.warn(quotaMessages.returned(this.pool.keys, refused));
    const failed = asked.find((result) => result.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    return pending;
  }

  private bounded<T>(work: Promise<T>): Promise<T> {
    return bounded(this.deadlines, work, OPERATION);
  }
}
