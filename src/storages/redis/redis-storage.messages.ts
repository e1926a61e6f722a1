import { describeError, quoteForeign } from '../../core/to-error.js';
import type { RedisLayoutKeys } from './redis-keys.js';
import type { RecordedLayout, SINGLE_UNRECORDED } from './redis-key-layout-error.js';

/** What the stream cursor logs. */
export const streamMessages = {
  malformedLoss: (id: string, stream: string, why: string) => `Skipping malformed loss entry ${id} on ${stream}: ${why}`,
  malformedEvent: (id: string, stream: string, why: string) => `Skipping malformed session event ${id} on ${stream}: ${why}`,
  historyLost: (stream: string, sequence: bigint, from: bigint, telling: boolean) =>
    `Session event stream ${stream} went back to sequence ${sequence} from ${from}: Redis lost acknowledged history (a restart without its data, `
    + `a restore from an older snapshot, a failover to a replica that lagged); sessions and events may be gone.${telling ? ' Telling the other instances' : ''}`,
  entriesTrimmed: (missed: bigint, stream: string, lastSeen: string) => `${missed} session event(s) on ${stream} after ${lastSeen} were removed before this instance read them`,
  replicaDiverged: (sessions: string, count: number, position: string) =>
    `The session replica of ${sessions} does not match Redis at entry ${position} (Redis holds ${count} sessions): `
    + 'the sorted set was deleted or evicted, or Redis lost data; rebuilding it from Redis',
  originDropped: (code: string, stream: string, ttlMs: number) =>
    `Session events on ${stream} from origin code ${quoteForeign(code)} are delivered without an origin (event.origin undefined): `
    + `the origins hash no longer names that instance (origins silent for ${ttlMs / 60_000} minutes are dropped)`,
  lossFoundElsewhere: (origin: string, stream: string, epoch: bigint, id: string) =>
    `Instance ${origin} found that Redis lost acknowledged session history on ${stream} (loss ${epoch}): sessions and events before ${id} may be gone`,
};

/** What the event reader logs. */
export const readerMessages = {
  broken: (everRead: boolean, error: unknown) => everRead
    ? `Session event reader lost its Redis connection (${describeError(error)}); retrying`
    : `Session event reader could not connect to Redis (${describeError(error)}); retrying`,
  resumed: (everRead: boolean, positions: string) => `Session event reader ${everRead ? 'reconnected' : 'connected'}; resuming after ${positions}`,
};

/** What the command connection logs and throws. */
export const connectionMessages = {
  couldNotConnect: (error: unknown) => `Redis session storage could not connect: ${describeError(error)}`,
  outage: (everReady: boolean, error: unknown) => everReady
    ? `Redis session storage lost its connection (${describeError(error)}); calls fail with SessionStorageUnavailableError until it is back`
    : `Redis session storage could not connect (${describeError(error)}); calls fail with SessionStorageUnavailableError until it does`,
  back: (first: boolean, ms: number) => `Redis session storage ${first ? 'connected' : 'reconnected'} after ${ms} ms`,
  nodeRedisMissing: (error: unknown) =>
    `RedisSessionStorage({ url }) needs the optional peer \`redis\` (node-redis), which could not be loaded (${describeError(error)}); `
    + 'install it, or pass an ioredis or node-redis client as `client`',
  unavailable: (operation: string, error: unknown) => `Redis could not complete ${operation}: ${describeError(error)}`,
};

/** What the replica's read path logs. */
export const replicaMessages = {
  seedFailed: (sessions: string, error: unknown) => `Seeding the session replica of ${sessions} failed (${describeError(error)}); lookups ask Redis until it completes`,
  seedResumed: (sessions: string) => `Session replica of ${sessions} resumed seeding`,
};

/** What the key layout check logs and throws. */
export const layoutMessages = {
  mismatchWhileRunning: (why: string) => `${why} Found while running: this instance stops serving calls (RedisKeyLayoutError) rather than split the fleet.`,
  checkFailed: (error: unknown) => `Checking the key layout in Redis failed (${describeError(error)}); calls wait until it succeeds, retrying`,
  mismatch(keys: RedisLayoutKeys, wanted: RecordedLayout, recorded: RecordedLayout | typeof SINGLE_UNRECORDED): string {
    const start = 'RedisSessionStorage refuses to use data laid out differently from its options';
    if (typeof recorded === 'string') {
      return `${start}: ${keys.single.sessions} and ${keys.single.events} hold data in the one-group layout (shards: 1, written by a version `
        + `that did not record its layout), but this storage has shards: ${wanted.shards}. Start it with shards: 1, or migrate (docs/cluster.md, "Changing shards").`;
    }
    if (recorded.layout !== wanted.layout) return `${start}: ${keys.layout} records layout ${JSON.stringify(recorded.layout)}, this version writes ${JSON.stringify(wanted.layout)}.`;
    if (recorded.shards !== wanted.shards) {
      return `${start}: ${keys.layout} records shards: ${recorded.shards}, this storage has shards: ${wanted.shards}. `
        + 'Every instance of a key prefix must use the same shards; to change it, migrate (docs/cluster.md, "Changing shards").';
    }
    const limit = (value: number) => (value === 0 ? 'no maxSessions' : `maxSessions: ${value}`);
    return `${start}: ${keys.layout} records ${limit(recorded.maxSessions)} for its ${recorded.shards} key groups, this storage has ${limit(wanted.maxSessions)}. `
      + 'With shards > 1 the limit is the prefix\'s, shared by every instance; to change it, see docs/cluster.md ("Changing maxSessions").';
  },
};

/** What the shared limit (maxSessions over several key groups) logs and says in refusals. */
export const quotaMessages = {
  returned: (keys: RedisLayoutKeys, amount: number) =>
    `Returned ${amount} of the session limit to ${keys.pool}: calls that failed (a timeout, a dropped connection) had taken it on its way to a key group`,
  recounted: (keys: RedisLayoutKeys, held: number, maxSessions: number, pool: number) =>
    `Recounted the session limit of ${keys.pool} (Redis lost or never had its count: a restart without data, a flush, an eviction, `
    + `a new prefix or one an earlier version wrote): the key groups hold ${held} of maxSessions ${maxSessions}, the pool now ${pool}`,
  healFailed: (error: unknown, interval: number) => `Healing the session limit failed (${describeError(error)}); retrying every ${interval} ms`,
  layoutChanged: (keys: RedisLayoutKeys, shards: number) =>
    `${keys.layout} now records other shards than this storage's ${shards}: this instance no longer heals the session limit (see RedisKeyLayoutError)`,
  belowLimit: (recounting: boolean) => recounting
    ? 'the rest of the limit is being recounted after a fault; retry shortly'
    : 'the rest of the limit is out of reach for now: held by key groups that did not answer, in flight in other calls, or taken by a fault and not healed yet',
};
