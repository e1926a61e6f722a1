import { localNow, RedisClock } from './redis-clock.js';
import type { RedisConnection } from './redis-connection.js';
import type { RedisLayoutKeys } from './redis-keys.js';
import type { PoolState } from './scripts/pool-read.script.js';
import { poolReadScript } from './scripts/pool-read.script.js';
import { poolReclaimScript, type ReclaimArgs, type ReclaimReply } from './scripts/pool-reclaim.script.js';
import { poolRecountAbandonScript } from './scripts/pool-recount-abandon.script.js';
import { poolRecountFinishScript, type RecountFinish, type RecountFinishArgs } from './scripts/pool-recount-finish.script.js';
import { poolRecountStartScript, type RecountStart } from './scripts/pool-recount-start.script.js';
import { poolSettleScript, type SettleReply, type TransferDecided } from './scripts/pool-settle.script.js';
import { poolTakeScript, type TakeArgs, type TakeReply } from './scripts/pool-take.script.js';

const NOTHING_SETTLED: SettleReply = { added: 0, refused: 0, settled: 0 };

/**
 * The pool's side of the shared limit (see redis-session-quota.ts): the pool
 * and its ledger, under the prefix's own hash tag, each step one script, and
 * the clock of the node that holds them, for the fences of takes and
 * reclaims and the hold of a recount.
 */
export class RedisQuotaPool {
  private readonly clock: RedisClock;

  constructor(
    private readonly connection: RedisConnection,
    readonly keys: RedisLayoutKeys,
  ) {
    this.clock = new RedisClock(keys.pool, connection);
  }

  /** Takes quota for a group and records the grant; `deadline` is the call's (local), its fence on this node. */
  async take(args: Omit<TakeArgs, 'fence'>, deadline: number): Promise<TakeReply> {
    const reply = await this.connection.run(poolTakeScript, this.keys, { ...args, fence: await this.clock.fence(deadline) });
    this.clock.learn(reply.redisMs, localNow());
    return reply;
  }

  /** Opens a reclaim for each of `groups` (with the call's deadline on its node). */
  async reclaim(groups: ReclaimArgs['groups'], deadline: number): Promise<ReclaimReply> {
    const reply = await this.connection.run(poolReclaimScript, this.keys, { fence: await this.clock.fence(deadline), groups });
    this.clock.learn(reply.redisMs, localNow());
    return reply;
  }

  /** Settles transfers their groups decided. */
  settle(decided: readonly TransferDecided[]): Promise<SettleReply> {
    return decided.length === 0 ? Promise.resolve(NOTHING_SETTLED) : this.connection.run(poolSettleScript, this.keys, decided);
  }

  read(): Promise<PoolState> {
    return this.connection.run(poolReadScript, this.keys, undefined);
  }

  /** Holds the pool for recount `id` until `deadline` (local). */
  async startRecount(id: string, deadline: number): Promise<RecountStart> {
    const reply = await this.connection.run(poolRecountStartScript, this.keys, { id, until: await this.clock.fence(deadline) });
    this.clock.learn(reply.redisMs, localNow());
    return reply;
  }

  finishRecount(args: RecountFinishArgs): Promise<RecountFinish> {
    return this.connection.run(poolRecountFinishScript, this.keys, args);
  }

  /** Ends recount `id`'s hold early, if it is still its own. */
  async abandonRecount(id: string): Promise<void> {
    await this.connection.run(poolRecountAbandonScript, this.keys, { id });
  }
}
