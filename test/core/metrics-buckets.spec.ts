import { metrics } from '@opentelemetry/api';
import { MeterProvider, MetricReader, type Histogram, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { InMemorySessionStorage, SessionSubject, type SessionLogger, type SessionStorage } from 'nestjs-mtproto-sessions';

/** A reader that collects on demand, as an app's SDK set-up would register one. */
class CollectingReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

const quiet: SessionLogger = { warn: () => undefined, error: () => undefined };
const NAME = 'mtproto.session.storage.operation.duration';

function histogram(collected: ResourceMetrics, operation: string): Histogram {
  for (const scope of collected.scopeMetrics) {
    for (const metric of scope.metrics) {
      if (metric.descriptor.name !== NAME) continue;
      const point = metric.dataPoints.find((candidate) => candidate.attributes['mtproto.session.storage.operation'] === operation);
      if (point !== undefined) return point.value as Histogram;
    }
  }
  throw new Error(`no ${NAME} point for ${operation}`);
}

/** The [lower, upper] bounds of the bucket that holds the only value recorded. */
function bucketOfTheOneValue({ buckets: { boundaries, counts } }: Histogram): [number, number] {
  const index = counts.findIndex((count) => count > 0);
  expect(counts.filter((count) => count > 0)).toEqual([1]);
  return [index === 0 ? -Infinity : boundaries[index - 1], index === boundaries.length ? Infinity : boundaries[index]];
}

/** A storage whose createSession takes at least `ms`, as a storage with a network round trip does. */
function slowStorage(ms: number): SessionStorage {
  const inner = new InMemorySessionStorage();
  return {
    createSession: (sessionId, authKeyId) =>
      new Promise((resolve, reject) => setTimeout(() => inner.createSession(sessionId, authKeyId).then(resolve, reject), ms)),
    hasSession: (sessionId, authKeyId) => inner.hasSession(sessionId, authKeyId),
    destroySession: (sessionId, authKeyId) => inner.destroySession(sessionId, authKeyId),
  };
}

describe('the storage call duration histogram, in seconds', () => {
  const reader = new CollectingReader();
  const provider = new MeterProvider({ readers: [reader] });
  beforeAll(() => {
    metrics.setGlobalMeterProvider(provider);
  });
  afterAll(async () => {
    await provider.shutdown();
    metrics.disable();
  });

  it('has bucket boundaries from tens of microseconds to past the call bounds, so calls spread over buckets', async () => {
    const subject = new SessionSubject(slowStorage(5), { logger: quiet });
    // The API loads with a dynamic import; the instruments exist once it has.
    await new Promise((resolve) => setImmediate(resolve));
    await subject.createSession(1n);

    const { resourceMetrics, errors } = await reader.collect();
    expect(errors).toEqual([]);
    const durations = histogram(resourceMetrics, 'createSession');
    const { boundaries } = durations.buckets;

    // Fine enough for an in-memory call (microseconds) and a Redis round trip
    // (a millisecond), and wide enough for a call held up to its bound (2 s
    // commandTimeout, 5 s observerTimeout). The SDK's default boundaries
    // (0, 5, 10 … 10000) fail every one of these.
    expect(boundaries[0]).toBeLessThanOrEqual(0.00005);
    expect(boundaries[boundaries.length - 1]).toBeGreaterThanOrEqual(5);
    for (let i = 1; i < boundaries.length; i++) {
      expect(boundaries[i]).toBeGreaterThan(boundaries[i - 1]);
      expect(boundaries[i] / boundaries[i - 1]).toBeLessThanOrEqual(2.5);
    }

    // A call of at least 5 ms is told apart from a sub-millisecond one: its
    // bucket starts at 1 ms or more (with the defaults it would be (0, 5 s]).
    const [lower] = bucketOfTheOneValue(durations);
    expect(lower).toBeGreaterThanOrEqual(0.001);
    await subject.close();
  });
});
