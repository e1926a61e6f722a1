import { metrics } from '@opentelemetry/api';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { InMemorySessionStorage, SessionSubject } from 'nestjs-mtproto-sessions';

class CollectingReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

it('reports through an SDK registered after an earlier subject was built, counting that subject too', async () => {
  const early = new SessionSubject(new InMemorySessionStorage());
  await settle();
  await early.createSession(1n);

  const reader = new CollectingReader();
  const provider = new MeterProvider({ readers: [reader] });
  metrics.setGlobalMeterProvider(provider);
  try {
    const late = new SessionSubject(new InMemorySessionStorage());
    await settle();
    await late.createSession(2n);
    await late.createSession(3n);
    const { resourceMetrics } = await reader.collect();
    const count = resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics).find((metric) => metric.descriptor.name === 'mtproto.session.count');
    expect(count?.dataPoints.map((point) => point.value)).toEqual([3]);
    await Promise.all([early.close(), late.close()]);
  } finally {
    await provider.shutdown();
    metrics.disable();
  }
});
