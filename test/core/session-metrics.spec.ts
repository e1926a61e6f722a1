import { metrics } from '@opentelemetry/api';
import { MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { InMemorySessionStorage, SessionStorageUnavailableError, SessionSubject } from 'nestjs-mtproto-sessions';
import { RedisSessionStorage } from 'nestjs-mtproto-sessions/redis';
import { RecordingLogger } from '../support/recording-logger';

/** A reader that collects on demand, registered as the global meter provider's, as an app's SDK set-up would. */
class CollectingReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

function points(collected: ResourceMetrics, name: string): { attributes: Record<string, unknown>; value: unknown }[] {
  for (const scope of collected.scopeMetrics) {
    for (const metric of scope.metrics) {
      if (metric.descriptor.name === name) return metric.dataPoints.map((point) => ({ attributes: point.attributes, value: point.value }));
    }
  }
  return [];
}

describe('metrics through the OpenTelemetry API, read by a registered reader', () => {
  const reader = new CollectingReader();
  const provider = new MeterProvider({ readers: [reader] });
  beforeAll(() => {
    metrics.setGlobalMeterProvider(provider);
  });
  afterAll(async () => {
    await provider.shutdown();
    metrics.disable();
  });

  it('reports live sessions, transitions by type, reason and origin, lookups, observer failures and storage call durations', async () => {
    let now = 1_000;
    const storage = new InMemorySessionStorage({ idleTimeout: 100, clock: () => now, instanceId: 'here' });
    const subject = new SessionSubject(storage, { logger: new RecordingLogger() });
    subject.subscribe({ update: () => undefined });
    const failing = { update: () => { throw new Error('boom'); }, toString: () => 'FailingObserver' };
    subject.subscribe(failing);
    // The API loads with a dynamic import; the instruments exist once it has.
    await new Promise((resolve) => setImmediate(resolve));

    await subject.createSession(1n);
    await subject.createSession(2n);
    await subject.createSession(3n, 7n);
    await subject.destroySession(1n);
    for (let i = 0; i < 5; i++) await subject.hasSession(2n);
    now += 1_000;
    await storage.expireIdleSessions();
    await subject.createSession(4n);

    const { resourceMetrics, errors } = await reader.collect();
    expect(errors).toEqual([]);
    expect(points(resourceMetrics, 'mtproto.session.count')).toEqual([{ attributes: {}, value: 1 }]);
    const transitions = points(resourceMetrics, 'mtproto.session.transitions').map(({ attributes, value }) => [
      attributes['mtproto.session.event.type'], attributes['mtproto.session.event.reason'], attributes['mtproto.session.event.origin'], value,
    ]);
    expect(transitions).toEqual(expect.arrayContaining([
      ['created', 'none', 'local', 4],
      ['destroyed', 'destroyed', 'local', 1],
      ['destroyed', 'expired', 'local', 2],
    ]));
    expect(points(resourceMetrics, 'mtproto.session.lookups')).toEqual([{ attributes: {}, value: 5 }]);
    expect(points(resourceMetrics, 'mtproto.session.observer.failures')).toEqual([
      { attributes: { 'mtproto.session.observer.name': 'FailingObserver', 'error.type': 'error' }, value: 7 },
    ]);
    const durations = points(resourceMetrics, 'mtproto.session.storage.operation.duration');
    expect(durations.map(({ attributes }) => attributes['mtproto.session.storage.operation']).sort()).toEqual(['createSession', 'destroySession']);
    await subject.close();
  });

  it('counts lookups that failed in the storage with the storage errors', async () => {
    // Nothing listens on port 1: every lookup goes to Redis and fails at once.
    const storage = new RedisSessionStorage({ url: 'redis://127.0.0.1:1', commandTimeout: 500, logger: new RecordingLogger() });
    const subject = new SessionSubject(storage, { logger: new RecordingLogger() });
    await new Promise((resolve) => setImmediate(resolve));
    try {
      for (let i = 0; i < 3; i++) await expect(subject.hasSession(BigInt(i))).rejects.toBeInstanceOf(SessionStorageUnavailableError);
      const { resourceMetrics } = await reader.collect();
      expect(points(resourceMetrics, 'mtproto.session.storage.errors')).toContainEqual({
        attributes: { 'mtproto.session.storage.operation': 'hasSession', 'error.type': 'SessionStorageUnavailableError' }, value: 3,
      });
    } finally {
      await subject.close();
    }
  });
});
