// `npm run bench:smoke`: runs `npm run bench -- --quick --json` once, so that the
// bench cannot rot: it must compile, run every suite and report every figure.
// It asserts the report's structure only, never a timing: speed is for
// `npm run bench` to show, not for a test to guess. It is a script of its own,
// outside the jest run, because the bench takes most of a minute and needs the
// whole machine; `.ci/run` runs it once.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

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
  'redis.cycle-vs-script-floor',
  'redis.node-cpu-per-transition',
  'redis.redis-cpu-per-transition',
  'redis.cycle-vs-full-script-floor',
  'redis.redis-cpu-vs-full-script-floor',
  'redis.commands-per-transition',
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

function onPath(command) {
  const result = spawnSync(command, ['--version'], { stdio: 'ignore' });
  return result.error === undefined && result.status === 0;
}

const redisAvailable = onPath('redis-server') && onPath('redis-cli');
if (!redisAvailable && process.env.CI === 'true') {
  // In CI a missing Redis must fail, not pass with every Redis figure n/a.
  throw new Error('redis-server and redis-cli are required in CI (Debian packages redis-server, redis-tools)');
}
/** Figures that may be n/a, with a reason: the Redis ones on a machine without redis-server (never in CI). */
const MAY_BE_UNAVAILABLE = new Set(
  redisAvailable ? [] : FIGURES.filter((id) => id.startsWith('redis.') || id.startsWith('replica.') || id.startsWith('shards.')),
);
/** Figures whose value may be 0 (no Redis command at all), so their ratio is unbounded; staleness may also be 0 (not stale at all). */
const MAY_BE_ZERO = new Set(['replica.commands-per-lookup', 'replica.commands-per-lookup-idle', 'replica.staleness-p50', 'replica.staleness-p99']);

function assertPositiveStats(stats, what) {
  for (const name of ['median', 'min', 'max']) {
    assert.ok(Number.isFinite(stats[name]) && stats[name] > 0, `${what}: ${name} is ${stats[name]}`);
  }
  assert.ok(stats.samples.length > 0, `${what}: no samples`);
  for (const sample of stats.samples) assert.ok(Number.isFinite(sample) && sample > 0, `${what}: sample ${sample}`);
}

describe('npm run bench -- --quick --json', () => {
  let report;

  before(() => {
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
    const run = spawnSync('npm', ['run', '--silent', 'bench', '--', '--quick', '--json'], { cwd: root, encoding: 'utf8', timeout: 170_000 });
    assert.equal(run.status, 0, `the bench exited with ${run.status ?? run.signal}:\n${run.stderr}\n${run.stdout}`);
    report = JSON.parse(run.stdout);
  });

  test('ran every suite in quick mode, without errors, and names the machine', () => {
    assert.deepEqual(report.errors, []);
    assert.equal(report.options.mode, 'quick');
    for (const suite of ['in-memory', 'churn', 'memory', 'notify']) assert.ok(report.suites.includes(suite), `suite ${suite} did not run`);
    assert.ok(report.machine.cores > 0);
    assert.equal(report.machine.node, process.version);
  });

  test('reports every figure', () => {
    const missing = FIGURES.filter((id) => !(id in report.figures));
    assert.deepEqual(missing, []);
  });

  for (const id of FIGURES) {
    test(`${id}: finite positive value, baseline and ratio, or n/a with a reason where allowed`, () => {
      const figure = report.figures[id];
      assert.equal(figure.id, id);
      assert.notEqual(figure.label, '');
      if (figure.value === null) {
        assert.ok(MAY_BE_UNAVAILABLE.has(id), `${id} is n/a: ${figure.unavailable}`);
        assert.equal(typeof figure.unavailable, 'string');
        assert.equal(figure.ratio, null);
        return;
      }
      assert.notEqual(figure.baseline, null);
      assert.notEqual(figure.baseline.label, '');
      assertPositiveStats(figure.baseline.stats, `${id} baseline`);
      if (MAY_BE_ZERO.has(id)) {
        for (const sample of figure.value.samples) assert.ok(Number.isFinite(sample) && sample >= 0, `${id}: sample ${sample}`);
      } else {
        assertPositiveStats(figure.value, `${id} value`);
        assert.ok(Number.isFinite(figure.ratio) && figure.ratio > 0, `${id}: ratio ${figure.ratio}`);
      }
      if (figure.target !== null) assert.equal(typeof figure.met, 'boolean');
    });
  }
});
