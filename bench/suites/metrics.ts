/**
 * Metrics: hasSession through the subject with an OpenTelemetry SDK
 * registered and collecting every 100 ms, against the same with no SDK (the
 * API's no-op meter). The meter provider is process-wide, so each variant
 * runs in a fresh process of its own; rounds alternate between them, so a
 * machine that speeds up or slows down affects both alike.
 */
import { metrics } from '@opentelemetry/api';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { InMemorySessionStorage, SessionSubject } from '../../src/index.js';
import { defineTask, type Suite } from '../harness.js';
import { IdStream, lookupIds } from '../ids.js';
import { expectEqual, RecordingLogger, sizeText } from '../support.js';

interface LookupParams {
  metricsOn: boolean;
  n: number;
  lookups: number;
  warmup: number;
}

interface LookupResult {
  rate: number;
  /** The lookups the SDK's reader reported (on), or -1 (off). */
  reported: number;
}

const LOOKUPS = defineTask('metrics/lookups', async (params) => {
  const { metricsOn, n, lookups, warmup } = params as unknown as LookupParams;
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 100 });
  if (metricsOn) metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));

  const random = new IdStream(41);
  const live = new BigInt64Array(n);
  for (let i = 0; i < n; i++) live[i] = random.next();
  const storage = new InMemorySessionStorage();
  const subject = new SessionSubject(storage, { logger: new RecordingLogger() });
  for (let i = 0; i < n; i++) await storage.createSession(live[i]);
  const ids = lookupIds(live, n, lookups, 42);
  // The subject loads @opentelemetry/api with a dynamic import; let it register its instruments.
  await new Promise((resolve) => setTimeout(resolve, 200));

  const run = async (): Promise<number> => {
    let hits = 0;
    for (let i = 0; i < lookups; i++) if (await subject.hasSession(ids[i])) hits++;
    expectEqual(hits, lookups / 2, 'subject.hasSession hits');
    return hits;
  };
  for (let round = 0; round < warmup; round++) await run();
  const start = process.hrtime.bigint();
  await run();
  const rate = lookups / (Number(process.hrtime.bigint() - start) / 1e9);

  let reported = -1;
  if (metricsOn) {
    // The figure is only honest if the SDK really collected the lookups it counted.
    await reader.forceFlush();
    const points = exporter.getMetrics().flatMap((resource) => resource.scopeMetrics.flatMap((scope) => scope.metrics))
      .filter((metric) => metric.descriptor.name === 'mtproto.session.lookups')
      .flatMap((metric) => metric.dataPoints.map((point) => Number(point.value)));
    reported = points.length === 0 ? 0 : Math.max(...points);
    if (reported < lookups * (warmup + 1)) throw new Error(`the SDK reported ${reported} lookups, fewer than the ${lookups * (warmup + 1)} made`);
    await reader.shutdown();
  }
  return { rate, reported } satisfies LookupResult;
});

export const metricsSuite: Suite = {
  name: 'metrics',
  description: 'subject.hasSession with an OpenTelemetry SDK collecting, against no SDK, each in a process of its own',
  async run(ctx) {
    const n = ctx.pick({ quick: 10_000, default: 1_000_000 });
    const lookups = ctx.pick({ quick: 1 << 12, default: 1 << 20 });
    const rounds = ctx.options.rounds;
    const warmup = ctx.options.warmup;
    ctx.progress(`${rounds} rounds, each a fresh process per variant: ${sizeText(n)} sessions, ${lookups} lookups timed`);
    const on: number[] = [];
    const off: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? [true, false] : [false, true];
      for (const metricsOn of order) {
        const result = await ctx.isolated<LookupResult & Record<string, number>>(LOOKUPS, { metricsOn, n, lookups, warmup });
        (metricsOn ? on : off).push(result.rate);
      }
    }
    ctx.figure({
      id: 'metrics.has-on-vs-off',
      label: `await subject.hasSession(id), ${sizeText(n)} sessions, metrics collected every 100 ms`,
      unit: 'ops/s',
      better: 'higher',
      value: on,
      baseline: { label: 'the same with no OpenTelemetry SDK registered', samples: off },
      target: { ratio: 0.9 },
      params: { sessions: n, lookups },
    });
  },
};
