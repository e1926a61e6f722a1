import type { SessionLogger } from '../../core/session-logger.js';
import type { Deadlines } from './deadlines.js';
import type { RedisConnection } from './redis-connection.js';
import { bounded } from './redis-failures.js';
import { RedisKeyLayoutError, type RecordedLayout, type SINGLE_UNRECORDED } from './redis-key-layout-error.js';
import type { RedisLayoutKeys, RedisSessionKeys } from './redis-keys.js';
import { ORIGIN_TTL_MS, ORIGINS_TEND_MS } from './redis-origins.js';
import { layoutMessages } from './redis-storage.messages.js';
import type { RedisStreamCursor } from './redis-stream-cursor.js';
import { layoutScript } from './scripts/layout.script.js';
import { originsHeartbeatScript } from './scripts/origins-heartbeat.script.js';
import { originsPruneScript } from './scripts/origins-prune.script.js';

/** Fields one prune step looks at (HSCAN COUNT): each step is short, however large an older version let the hash grow. */
const PRUNE_STEP_FIELDS = 200;

/** A key group as the verifier checks it: its keys and where this instance is in its stream. */
export interface VerifiedGroup {
  readonly keys: RedisSessionKeys;
  readonly cursor: RedisStreamCursor;
}

/**
 * Finds, without waiting for a write to show it, what leaves Redis or changes
 * there behind the storage's back. Every `interval` ms it reads, per key
 * group, the sequence, the sorted set's size, the stream's last entry and the
 * sequence again (plain reads sent together: the size belongs to that
 * sequence when both reads of it agree, as every change to the set bumps it
 * in the same script), and the prefix's layout record:
 * - data gone (FLUSHALL, a restart without data, a restore, a deleted or
 *   evicted sequence or stream): the group's cursor reports lost history, so
 *   observers get SessionEventsMissed ('lost'), every instance is told
 *   through a loss entry, and the replica is rebuilt;
 * - a replica that no longer matches Redis (the sorted set deleted or
 *   evicted): compared at the reply's stream position, SessionEventsMissed
 *   ('diverged') and a rebuild (see RedisStreamCursor.verify);
 * - the layout record gone: recorded again, so that an instance with another
 *   layout that starts later is refused as it would have been before;
 *   recorded differently: {@link refused} resolves, and the storage stops.
 * A check that fails (Redis away) is skipped: the connection reports outages.
 *
 * It also keeps the origins hashes bounded: every ORIGINS_TEND_MS it records
 * this instance's heartbeat in each group's origins hash (one script), and
 * when that hash's prune is due (once per ORIGINS_TEND_MS for the whole
 * fleet) prunes it, dropping the origins silent for ORIGIN_TTL_MS (see
 * scripts/origins-prune.script.ts).
 */
export class RedisVerifier {
  /** Resolves with the error when the layout record names another layout than this instance's. */
  readonly refused: Promise<RedisKeyLayoutError>;
  private refuse!: (error: RedisKeyLayoutError) => void;
  private timer: NodeJS.Timeout | undefined;
  private checking = false;
  /** When origins were last tended (performance.now()); -Infinity: at the first round. */
  private tendedAt = -Infinity;
  private tending: Promise<void> | undefined;

  constructor(
    private readonly groups: readonly VerifiedGroup[],
    private readonly layout: { readonly keys: RedisLayoutKeys; readonly wanted: RecordedLayout },
    private readonly connection: RedisConnection,
    private readonly deadlines: Deadlines,
    private readonly logger: SessionLogger,
  ) {
    this.refused = new Promise((resolve) => (this.refuse = resolve));
  }

  /** Checks every `interval` ms from now on. */
  start(interval: number): void {
    this.timer ??= setInterval(() => {
      if (this.tending === undefined && performance.now() - this.tendedAt >= ORIGINS_TEND_MS) {
        this.tendedAt = performance.now();
        this.tending = this.tendOrigins(ORIGINS_TEND_MS).finally(() => (this.tending = undefined));
      }
      if (this.checking) return;
      this.checking = true;
      void this.check().finally(() => (this.checking = false));
    }, interval);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
  }

  /** One round of checks (for tests: the timer runs them by itself). */
  async check(): Promise<void> {
    await Promise.all([...this.groups.map((group) => this.checkGroup(group)), this.checkLayout()]);
  }

  /**
   * Beats in every group's origins hash and prunes the hashes whose prune is
   * due now (for tests: prunes every group's at once, whoever pruned last;
   * the timer tends them by itself).
   */
  async pruneOrigins(): Promise<void> {
    await this.tendOrigins(0);
  }

  /** Beats in each group's origins hash, and prunes it when due (`pruneInterval` after the fleet's last prune of it). */
  private async tendOrigins(pruneInterval: number): Promise<void> {
    await Promise.all(this.groups.map(async ({ keys, cursor }) => {
      try {
        const { connection, deadlines } = this;
        const beat = connection.afterReady(() => connection.run(originsHeartbeatScript, keys, { instanceId: cursor.instanceId, pruneInterval }));
        if (await bounded(deadlines, beat, originsHeartbeatScript.name) !== 1) return;
        let step = '0';
        do {
          const prune = connection.afterReady(() => connection.run(originsPruneScript, keys, { cursor: step, ttl: ORIGIN_TTL_MS, count: PRUNE_STEP_FIELDS }));
          step = (await bounded(deadlines, prune, originsPruneScript.name)).cursor;
        } while (step !== '0');
      } catch {
        // Redis away: the next turn beats again, and whoever comes first prunes.
      }
    }));
  }

  private async checkGroup({ keys, cursor }: VerifiedGroup): Promise<void> {
    const mark = cursor.verifierMark();
    if (mark === undefined) return;
    try {
      const client = this.connection.client;
      const [before, sessions, last, after] = await bounded(this.deadlines, this.connection.afterReady(() => Promise.all([
        client.get(keys.sequence), client.zCard(keys.sessions), client.xRevRange(keys.events, '+', '-', { COUNT: 1 }), client.get(keys.sequence),
      ])), 'verifying a key group');
      cursor.verify(mark, {
        sequence: BigInt(before ?? '0'),
        sessions: before === after ? sessions : undefined,
        lastId: last[0]?.id ?? '0-0',
      });
    } catch {
      // Redis away, or a sequence that is no number: the next round checks again.
    }
  }

  private async checkLayout(): Promise<void> {
    const { keys, wanted } = this.layout;
    let recorded: RecordedLayout | typeof SINGLE_UNRECORDED;
    try {
      const [layout, shards, maxSessions] = await bounded(this.deadlines, this.connection.afterReady(() => this.connection.client.hmGet(keys.layout, ['layout', 'shards', 'maxSessions'])), 'verifying the key layout');
      recorded = layout !== null && layout !== undefined
        ? { layout, shards: Number(shards), maxSessions: Number(maxSessions) }
        // The record is gone (with the rest of the data, or alone): recorded again, as at start-up.
        : await bounded(this.deadlines, this.connection.run(layoutScript, keys, wanted), 'recording the key layout');
    } catch {
      return;
    }
    if (typeof recorded !== 'string' && recorded.layout === wanted.layout && recorded.shards === wanted.shards && recorded.maxSessions === wanted.maxSessions) return;
    const prefix = keys.layout.slice(1, keys.layout.lastIndexOf('}'));
    const error = new RedisKeyLayoutError(layoutMessages.mismatch(keys, wanted, recorded), prefix, wanted, recorded);
    this.logger.error(layoutMessages.mismatchWhileRunning(error.message));
    this.stop();
    this.refuse(error);
  }
}
