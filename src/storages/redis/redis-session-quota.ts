import { SessionLimitError } from '../../core/session-storage-errors.js';
import type { RedisConnection } from './redis-connection.js';
import type { RedisLayoutKeys } from './redis-keys.js';
import type { Transition } from './redis-transition.js';
import type { RedisWritePath } from './redis-write-path.js';
import { poolGiveScript, poolTakeScript } from './scripts/pool.script.js';

/** Most quota a group takes at once, as a share of maxSessions per group. */
const TAKE_SHARE = 8;
/** Takes (each followed by a create) one call tries before it is refused, when others keep using up what it took. */
const TAKE_ATTEMPTS = 3;

/**
 * `maxSessions` over several key groups, never exceeded. No script can count
 * sessions in every group at once (on a Cluster they are on different
 * masters), so the limit is split into quotas: each group's quota key says how
 * many sessions the group may hold, and the pool key holds the rest. A create
 * is one script in its group, refused there when the group holds its quota
 * already; the call then takes more from the pool (one script) and creates
 * again, adding what it took to the group's quota in the same script. When
 * the pool is empty, every group hands back what it holds unused (one script
 * each, then one into the pool) and the call takes once more. Quota leaves one
 * key before it reaches the next, so pool + the groups' quotas never exceed
 * maxSessions, and each group holds at most its quota: the sessions never do.
 *
 * A create is refused below the limit only while unused quota is out of reach:
 * held by a group whose master is down, in flight between two scripts of
 * another call, or lost by a call that failed between its two scripts (a
 * timeout or a dropped connection at that moment; at most one take's worth,
 * which stays out of use until the layout is rebuilt).
 */
export class RedisSessionQuota {
  private readonly most: number;
  private reclaiming: Promise<void> | undefined;

  constructor(
    private readonly connection: RedisConnection,
    private readonly keys: RedisLayoutKeys,
    private readonly groups: readonly RedisWritePath[],
    private readonly maxSessions: number,
  ) {
    this.most = Math.max(1, Math.floor(maxSessions / (groups.length * TAKE_SHARE)));
  }

  /** Creates `member` in `group` within the limit: changed is true if new, false if it existed (`deadline` as in RedisWritePath.create). */
  async create(group: RedisWritePath, member: string, deadline: number): Promise<Transition<boolean>> {
    let { changed, settled } = await group.createWithinQuota(member, 0, deadline);
    // Every attempt may have expired lapsed sessions; the call waits for their observers too.
    const settling = [settled];
    for (let attempt = 0; changed === 'quota' && attempt < TAKE_ATTEMPTS; attempt++) {
      let grant = await this.take();
      if (grant === 0) {
        await this.reclaim();
        grant = await this.take();
      }
      if (grant === 0) break;
      ({ changed, settled } = await group.createWithinQuota(member, grant, deadline));
      settling.push(settled);
    }
    if (changed === 'quota') throw new SessionLimitError(this.maxSessions);
    return { changed, settled: settling.length === 1 ? settled : Promise.all(settling).then(() => undefined) };
  }

  private take(): Promise<number> {
    return this.connection.run(poolTakeScript, this.keys, { most: this.most, groups: this.groups.length });
  }

  /** Every group hands its unused quota back to the pool; calls that need it meanwhile share one round. */
  private reclaim(): Promise<void> {
    this.reclaiming ??= Promise.allSettled(this.groups.map(async (group) => {
      const released = await group.release();
      if (released > 0) await this.connection.run(poolGiveScript, this.keys, { amount: released });
    })).then(() => {
      this.reclaiming = undefined;
    });
    return this.reclaiming;
  }
}
