import type { AuthKeyId, SessionId } from '../../core/session-id.js';
import { SessionLimitError, SessionStorageTimeoutError } from '../../core/session-storage-errors.js';
import { sleep } from './backoff.js';
import type { Deadlines } from './deadlines.js';
import { localNow } from './redis-clock.js';
import { bounded } from './redis-failures.js';
import type { RedisQuotaHealer } from './redis-quota-healer.js';
import type { RedisQuotaPool } from './redis-quota-pool.js';
import { quotaMessages } from './redis-storage.messages.js';
import type { Transition } from './redis-transition.js';
import type { Grant, RedisWritePath } from './redis-write-path.js';
import { POOL_STATUS, TRANSFER } from './scripts/quota-status.js';

/**
 * `maxSessions` over several key groups: never exceeded, and what faults
 * take of it comes back by itself.
 *
 * Quotas. No script can count every group's sessions at once (on a Cluster
 * the groups are on different masters), so the limit is split: each group's
 * quota key says how many sessions it may hold (its create script refuses
 * past it), and the pool key holds the rest. A create refused by its group's
 * quota takes from the pool and creates again with the grant, which the
 * create script adds to the quota first; when the pool is empty, every group
 * releases its unused quota to the pool (a reclaim) and the call takes once
 * more. Quota moves between two keys of different slots, so in two scripts:
 * a call that fails between them (a timeout, a killed connection) used to
 * lose what was on its way for good.
 *
 * The ledger. Every transfer is recorded in the pool's ledger hash, in the
 * script on the pool's side, before any quota leaves its key: a take
 * decrements the pool and records the grant (id, amount, group, fence)
 * together; a reclaim is recorded before its groups release. The group's
 * script marks its part in the group's grants hash, in the script that
 * changes its quota (see quota-marks.lua). So at every moment
 *
 *   pool + Σ group quotas + Σ grants recorded and not yet received ≤ maxSessions
 *
 * and each group's sessions ≤ its quota: quota in flight is always in the
 * ledger, and the sessions never exceed the limit.
 *
 * Fences. A transfer carries its call's deadline on its group's node (the
 * fence of RedisWritePath, from RedisClock); the group refuses it past that,
 * and a fenced create adds nothing (it used to add its grant anyway). So once
 * the fence has passed, whether the group took part is final. The healer
 * (redis-quota-healer.ts, every instance, every second) asks the group (one
 * script, which marks a transfer it never saw as refused, so that it can
 * never take part later, clocks or no clocks), then settles it in the ledger
 * (one script: a grant refused goes back to the pool, what a reclaim
 * released joins it, and the entry leaves; an entry already gone is skipped,
 * so healers running at once settle each transfer once). Several healers are
 * safe because each step is atomic, a decision is written once, and the
 * entry's removal is the single point where quota returns.
 *
 * Data loss. A restart without data, FLUSHALL, an evicted key: the pool's
 * node loses the pool and the ledger (and the layout record), a group's node
 * loses the group's quota, sessions and marks. Each leaves a sign a healing
 * pass reads: a ledger without incarnation or a missing pool; a group whose
 * grants hash does not name the ledger's incarnation, or whose quota is below
 * its sessions. Then the healer recounts:
 * 1. It holds the pool (one script): no take or reclaim starts while the
 *    hold lasts (half a commandTimeout at most; a hold that lapses is
 *    dropped by the next take, which makes the recount's finish refuse). A
 *    ledger with no incarnation gets a new random one.
 * 2. Each group (one script each) records the ledger's incarnation, so that
 *    a grant of a ledger that was lost, still on its way, is refused when it
 *    lands; decides every transfer to it still in the ledger for good (one
 *    it has not taken part in is refused: marked, so it can never land); and
 *    reports its quota (at least its sessions). From then on its quota can
 *    only shrink while the hold lasts: grants come from the ledger alone,
 *    and every one recorded was received or refused.
 * 3. The finish (one script) sets the pool to maxSessions minus their sum
 *    and drops the transfers the recount found (the quotas hold their
 *    outcome), if the hold is still this recount's and no other transfer
 *    appeared. The quotas read can only have shrunk since (a new loss),
 *    never grown, so pool + quotas stay within the limit, while calls run
 *    and while other instances heal; a recount cut off midway changes no
 *    total (its decisions are the groups' for good, settled as any other).
 * A pool kept by an earlier version (a pool, never counted) is adopted: its
 * recount may lower it, never raise it, as that version's instances may have
 * quota in flight that no ledger records. The layout record's "pool starts
 * full" was wrong after a partial loss on a Cluster (the record gone, the
 * groups' quotas kept: the verifier writing the record again let the
 * sessions pass the limit): the layout script no longer touches the pool;
 * the first recount fills it.
 *
 * Bounds. A grant lost by a failed call is back at the first healing pass
 * after its fence (its caller's deadline): within commandTimeout + 1 s of
 * the call's start, or of the fault's end if Redis was out of reach then.
 * Data loss is found by the first pass after it (1 s, plus one
 * commandTimeout when a pass was stuck on a dead connection), and recounted
 * in three round trips (or, when a recount was cut off, after its hold
 * lapses, half a commandTimeout). So, with the defaults, capacity is back
 * within 2 × commandTimeout + 2 s = 6 s of the fault's end (docs/cluster.md,
 * "The limit heals").
 *
 * Below the limit, a create is refused only while unused quota is out of
 * reach: held by a group whose node does not answer (as long as it does
 * not), in flight in another call (until it ends), lost by a fault (until
 * healed, as above), or during a recount's hold (a create waits for it
 * within its own deadline first).
 */
export class RedisSessionQuota {
  /** Most quota a group takes at once, as a share of maxSessions per group. */
  private static readonly TAKE_SHARE = 8;
  /** Takes (each followed by a create) one call tries before it is refused, when others keep using up what it took. */
  private static readonly TAKE_ATTEMPTS = 3;
  /** Between two tries of a take while a recount holds the pool (ms). */
  private static readonly HOLD_RETRY_MS = 20;

  private readonly most: number;
  private reclaiming: Promise<void> | undefined;

  constructor(
    private readonly pool: RedisQuotaPool,
    private readonly healer: RedisQuotaHealer,
    private readonly deadlines: Deadlines,
    private readonly groups: readonly RedisWritePath[],
    private readonly maxSessions: number,
    private readonly commandTimeout: number,
    /** Live sessions over every group now, for a refusal's message. */
    private readonly countLive: () => Promise<number>,
  ) {
    this.most = Math.max(1, Math.floor(maxSessions / (groups.length * RedisSessionQuota.TAKE_SHARE)));
  }

  /** Creates `member` (of `sessionId`, `authKeyId`) in group `index` within the limit: changed is true if new, false if it existed (`deadline` as in RedisWritePath.create). */
  async create(index: number, member: string, sessionId: SessionId, authKeyId: AuthKeyId | undefined, deadline: number): Promise<Transition<boolean>> {
    const group = this.groups[index]!;
    let { changed, settled } = await group.createWithinQuota(member, sessionId, authKeyId, undefined, deadline);
    // Every attempt may have expired lapsed sessions; the call waits for their observers too.
    const settling = [settled];
    let recounting = false;
    for (let attempt = 0; changed === 'quota' && attempt < RedisSessionQuota.TAKE_ATTEMPTS; attempt++) {
      let grant = await this.take(index, deadline);
      if (grant === 'empty') {
        await this.reclaim(deadline);
        grant = await this.take(index, deadline);
      }
      if (typeof grant === 'string') {
        recounting = grant === 'recounting';
        break;
      }
      ({ changed, settled } = await group.createWithinQuota(member, sessionId, authKeyId, grant, deadline));
      settling.push(settled);
    }
    if (changed === 'quota') throw await this.refusal(recounting);
    return { changed, settled: settling.length === 1 ? settled : Promise.all(settling) };
  }

  /**
   * Takes quota from the pool for group `index`: a grant, 'empty', or
   * 'recounting' when a recount held the pool for as long as the call could
   * wait (until a quarter of its time is left).
   */
  private async take(index: number, deadline: number): Promise<Grant | 'empty' | 'recounting'> {
    const groupFence = await this.groups[index]!.fenceOf(deadline);
    const waitUntil = deadline - this.commandTimeout / 4;
    for (;;) {
      const reply = await this.pool.take({ most: this.most, groups: this.groups.length, group: index, groupFence }, deadline);
      switch (reply.status) {
        case POOL_STATUS.done:
          return { incarnation: reply.incarnation, id: reply.id, amount: reply.amount, fence: groupFence };
        case POOL_STATUS.empty:
          return 'empty';
        case POOL_STATUS.fenced:
          throw new SessionStorageTimeoutError('createSession', this.commandTimeout, 'Redis received it past its deadline and did not run it');
        case POOL_STATUS.uncounted:
          // This instance recounts (or joins the recount of another); its failures are the healer's to report.
          this.healer.recount().catch(() => undefined);
          break;
        default:
          break;
      }
      if (localNow() >= waitUntil) return 'recounting';
      await sleep(Math.min(RedisSessionQuota.HOLD_RETRY_MS, waitUntil - localNow()));
    }
  }

  /**
   * Every group releases its unused quota to the pool; calls that need it
   * meanwhile share one round, bounded by commandTimeout as a call is (it
   * outlives the call that started it).
   */
  private reclaim(deadline: number): Promise<void> {
    this.reclaiming ??= bounded(this.deadlines, this.reclaimOnce(deadline), 'reclaiming unused session quota').catch(() => undefined).then(() => {
      this.reclaiming = undefined;
    });
    return this.reclaiming;
  }

  private async reclaimOnce(deadline: number): Promise<void> {
    // A group whose node does not answer (its clock unknown after a reconnect) is left out.
    const fences = await Promise.allSettled(this.groups.map((group) => group.fenceOf(deadline)));
    const groups = fences.flatMap((fence, group) => (fence.status === 'fulfilled' ? [{ group, fence: fence.value }] : []));
    const opened = await this.pool.reclaim(groups, deadline);
    // Held or uncounted: the take that follows waits for the recount.
    if (!opened.opened) return;
    const released = await Promise.allSettled(groups.map(({ group, fence }, i) => this.groups[group]!.release({ incarnation: opened.incarnation, id: opened.ids[i]!, fence })));
    // A group that did not answer: the healer settles its reclaim once its fence has passed.
    const decided = released.flatMap((result, i) => (result.status === 'fulfilled' ? [{ id: opened.ids[i]!, outcome: TRANSFER.released, amount: result.value }] : []));
    await this.pool.settle(decided);
  }

  /** The refusal, with the count of live sessions when Redis gives it. */
  private async refusal(recounting: boolean): Promise<SessionLimitError> {
    let live: number | undefined;
    try {
      live = await this.countLive();
    } catch {
      // The refusal stands without its count.
    }
    const below = live !== undefined && live < this.maxSessions;
    return new SessionLimitError(this.maxSessions, live, below ? quotaMessages.belowLimit(recounting) : undefined);
  }
}
