/**
 * Every suite of `npm run bench`, in the order they run. To add one (say
 * bench/suites/redis.ts), export a `Suite` from its file and list it here;
 * see bench/README.md.
 */
import type { Suite } from '../harness.js';
import { churnSuite } from './churn.js';
import { inMemorySuite } from './in-memory.js';
import { memorySuite } from './memory.js';
import { metricsSuite } from './metrics.js';
import { notifySuite } from './notify.js';
import { redisSuite } from './redis.js';
import { replicaSuite } from './replica.js';
import { shardsSuite } from './shards.js';
import { startupSuite } from './startup.js';

export const suites: readonly Suite[] = [inMemorySuite, churnSuite, memorySuite, notifySuite, redisSuite, replicaSuite, shardsSuite, startupSuite, metricsSuite];
