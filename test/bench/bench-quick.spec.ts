/**
 * Runs `npm run bench -- --quick --json` once, so that the bench cannot rot:
 * it must compile, run every suite and report every figure. It asserts the
 * report's structure only, never a timing: speed is for `npm run bench` to
 * show, not for a test to guess.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { redisAvailable } from '../support/redis-server';

interface Stats {
  median: number;
  min: number;
  max: number;
  samples: number[];
}

interface Figure {
  suite: string;
  id: string;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
  value: Stats | null;
  baseline: { label: string; stats: Stats } | null;
  ratio: number | null;
  target: { text: string } | null;
  met: boolean | null;
  unavailable: string | null;
}

interface Report {
  machine: { node: string; cpu: string; cores: number };
  options: { mode: string; rounds: number };
  suites: string[];
  figures: Record<string, Figure>;
  errors: unknown[];
}

/** Every figure the default run reports (the capacity ones need --capacity). */
const FIGURES = [
  'in-memory.subject-has-vs-set',
  'in-memory.subject-has-vs-bare',
  'in-memory.storage-has-vs-set',
  'in-memory.subject-has-scoped-vs-set',
  'churn.has-after-vs-before',
  'churn.cycles-vs-set',
  'memory.unscoped-bytes',
  'memory.scoped-bytes',
  'memory.idle-bytes',
  'memory.fill-seconds',
  'memory.fill-longest-pause',
  'notify.async-vs-emitasync',
  'notify.async-vs-0.1.0',
  'notify.async-vs-promise-all',
  'notify.sync-vs-emit',
  'notify.cycle-vs-emitasync',
  'redis.has-vs-exists',
  'redis.has-vs-exists-untimed',
  'redis.cycle-vs-set-del',
  'redis.cycle-vs-set-del-untimed',
  'redis.latency-p50',
  'redis.latency-p99',
  'redis.latency-p99-untimed',
  'redis.latency-rate',
  'replica.has-vs-in-memory',
  'replica.has-vs-exists',
  'replica.commands-per-lookup',
  'replica.commands-per-lookup-idle',
  'replica.staleness-p50',
  'replica.staleness-p99',
  'replica.bytes-unscoped',
  'replica.bytes-idle',
  'replica.seed-seconds',
  'replica.seed-longest-block',
  'replica.redis-bytes-sorted-set',
  'replica.redis-bytes-stream',
  'replica.redis-bytes-total',
  'shards.cluster-busiest-share',
  'shards.cluster-two-process-cycles',
  'shards.standalone-cycle',
  'shards.standalone-latency-p50',
  'shards.standalone-latency-p99',
  'startup.root-vs-root-and-redis',
  'startup.root-vs-bare-node',
  'metrics.has-on-vs-off',
];

/** Figures that may be n/a, with a reason: the Redis ones on a machine without redis-server (never in CI, which has it). */
const MAY_BE_UNAVAILABLE = new Set(redisAvailable ? [] : FIGURES.filter((id) => id.startsWith('redis.') || id.startsWith('replica.') || id.startsWith('shards.')));
/** Figures whose value may be 0 (no Redis command at all), so their ratio is unbounded; staleness may also be 0 (not stale at all). */
const MAY_BE_ZERO = new Set(['replica.commands-per-lookup', 'replica.commands-per-lookup-idle', 'replica.staleness-p50', 'replica.staleness-p99']);

function expectPositiveStats(stats: Stats, what: string): void {
  for (const [name, number] of Object.entries({ median: stats.median, min: stats.min, max: stats.max })) {
    if (!(Number.isFinite(number) && number > 0)) throw new Error(`${what}: ${name} is ${number}`);
  }
  expect(stats.samples.length).toBeGreaterThan(0);
  for (const sample of stats.samples) if (!(Number.isFinite(sample) && sample > 0)) throw new Error(`${what}: sample ${sample}`);
}

describe('npm run bench -- --quick --json', () => {
  let report: Report;

  beforeAll(() => {
    const root = path.resolve(__dirname, '../..');
    const run = spawnSync('npm', ['run', '--silent', 'bench', '--', '--quick', '--json'], { cwd: root, encoding: 'utf8', timeout: 170_000 });
    if (run.status !== 0) throw new Error(`the bench exited with ${run.status ?? run.signal}:\n${run.stderr}\n${run.stdout}`);
    report = JSON.parse(run.stdout) as Report;
  }, 180_000);

  it('ran every suite in quick mode, without errors, and names the machine', () => {
    expect(report.errors).toEqual([]);
    expect(report.options.mode).toBe('quick');
    expect(report.suites).toEqual(expect.arrayContaining(['in-memory', 'churn', 'memory', 'notify']));
    expect(report.machine.cores).toBeGreaterThan(0);
    expect(report.machine.node).toBe(process.version);
  });

  it('reports every figure', () => {
    expect(Object.keys(report.figures).sort()).toEqual(expect.arrayContaining([...FIGURES].sort()));
  });

  it.each(FIGURES)('%s: finite positive value, baseline and ratio, or n/a with a reason where allowed', (id) => {
    const figure = report.figures[id];
    expect(figure.id).toBe(id);
    expect(figure.label).not.toBe('');
    if (figure.value === null) {
      expect(MAY_BE_UNAVAILABLE.has(id)).toBe(true);
      expect(figure.unavailable).toEqual(expect.any(String));
      expect(figure.ratio).toBeNull();
      return;
    }
    expect(figure.baseline).not.toBeNull();
    expect(figure.baseline!.label).not.toBe('');
    expectPositiveStats(figure.baseline!.stats, `${id} baseline`);
    if (MAY_BE_ZERO.has(id)) {
      for (const sample of figure.value.samples) expect(Number.isFinite(sample) && sample >= 0).toBe(true);
      if (figure.target !== null) expect(typeof figure.met).toBe('boolean');
      return;
    }
    expectPositiveStats(figure.value, `${id} value`);
    expect(Number.isFinite(figure.ratio) && figure.ratio! > 0).toBe(true);
    if (figure.target !== null) expect(typeof figure.met).toBe('boolean');
  });
});
