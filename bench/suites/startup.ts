/**
 * Start-up: what requiring the package costs a process. The root entry loads
 * no Redis client; 0.1.0's root loaded node-redis for every app. Each sample
 * is the mean wall time of a few fresh `node` processes that require one
 * entry and exit, so module loading is all that differs between variants.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type { Suite } from '../harness.js';

/** Compiled with the bench into dist-bench/, beside this suite. */
const ROOT_ENTRY = path.resolve(__dirname, '../../src/index.js');
const REDIS_ENTRY = path.resolve(__dirname, '../../src/storages/redis/index.js');
/** The /redis entry loads node-redis only for a storage on `{ url }`; 0.1.0 loaded it with the root. */
const NODE_REDIS = require.resolve('redis');

/** Loads the entries, then prints how many modules it took, so each variant checks what it loaded. */
function script(entries: readonly string[]): string {
  return `${entries.map((entry) => `require(${JSON.stringify(entry)});`).join('')}
    const files = Object.keys(require.cache);
    process.stdout.write(JSON.stringify({ modules: files.length, redis: files.filter((f) => /[\\\\/]node_modules[\\\\/](redis|@redis)[\\\\/]/.test(f)).length }));`;
}

interface Variant {
  entries: readonly string[];
  /** Whether node-redis modules must be among those loaded. */
  loadsRedis: boolean;
}

function spawnOnce(variant: Variant): { ms: number; modules: number } {
  const start = process.hrtime.bigint();
  const run = spawnSync(process.execPath, ['-e', script(variant.entries)], { encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (run.status !== 0) throw new Error(`node exited with ${run.status ?? run.signal}: ${run.stderr}`);
  const { modules, redis } = JSON.parse(run.stdout) as { modules: number; redis: number };
  if ((redis > 0) !== variant.loadsRedis) throw new Error(`${variant.entries.join(' + ')} loaded ${redis} Redis modules`);
  return { ms, modules };
}

export const startupSuite: Suite = {
  name: 'startup',
  description: 'wall time of a node process that requires the package root, against the root plus the Redis storage (what 0.1.0 loaded)',
  async run(ctx) {
    const perSample = ctx.pick({ quick: 1, default: 3 });
    const rounds = ctx.pick({ quick: 1, default: ctx.options.rounds });
    const variants = {
      root: { entries: [ROOT_ENTRY], loadsRedis: false },
      rootAndRedis: { entries: [ROOT_ENTRY, REDIS_ENTRY, NODE_REDIS], loadsRedis: true },
      bare: { entries: [], loadsRedis: false },
    } satisfies Record<string, Variant>;
    const names = Object.keys(variants) as (keyof typeof variants)[];
    const samples = { root: [] as number[], rootAndRedis: [] as number[], bare: [] as number[] };
    const modules = { root: 0, rootAndRedis: 0, bare: 0 };
    ctx.progress(`${rounds} rounds of ${perSample} processes per variant`);
    for (const name of names) spawnOnce(variants[name]);
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? names : [...names].reverse();
      for (const name of order) {
        let total = 0;
        for (let i = 0; i < perSample; i++) {
          const run = spawnOnce(variants[name]);
          total += run.ms;
          modules[name] = run.modules;
        }
        samples[name].push(total / perSample);
      }
    }
    const saved = median(samples.rootAndRedis) - median(samples.root);
    ctx.figure({
      id: 'startup.root-vs-root-and-redis',
      label: 'node process requiring the package root',
      unit: 'ms',
      better: 'lower',
      value: samples.root,
      baseline: { label: 'root + nestjs-mtproto-sessions/redis + node-redis (what 0.1.0\'s root loaded)', samples: samples.rootAndRedis },
      note: `${saved.toFixed(0)} ms saved per start; modules loaded: ${modules.root} against ${modules.rootAndRedis}`,
    });
    ctx.figure({
      id: 'startup.root-vs-bare-node',
      label: 'node process requiring the package root (Nest included)',
      unit: 'ms',
      better: 'lower',
      value: samples.root,
      baseline: { label: 'bare node -e ""', samples: samples.bare },
      note: `${(median(samples.root) - median(samples.bare)).toFixed(0)} ms above a bare node process, ${modules.root - modules.bare} modules`,
    });
  },
};

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}
