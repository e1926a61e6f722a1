/**
 * An OpenTelemetry SDK started during bootstrap, in a provider's onModuleInit
 * (after SessionsModule built the subject, as an app's telemetry module
 * often does), still receives the package's metrics.
 */
import { Injectable, Module, type OnModuleInit } from '@nestjs/common';
import { metrics } from '@opentelemetry/api';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { InMemorySessionStorage, SessionsModule, SessionSubject } from 'nestjs-mtproto-sessions';
import { bootstrap } from '../support/bootstrap';

class CollectingReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

const reader = new CollectingReader();
const provider = new MeterProvider({ readers: [reader] });

@Injectable()
class TelemetrySetup implements OnModuleInit {
  onModuleInit(): void {
    metrics.setGlobalMeterProvider(provider);
  }
}

it('reports to an SDK registered in a provider\'s onModuleInit, after the subject was built', async () => {
  @Module({ imports: [SessionsModule.forRoot(new InMemorySessionStorage())], providers: [TelemetrySetup] })
  class AppModule {}
  const { app } = await bootstrap(AppModule);
  try {
    // The API loads with a dynamic import; the instruments exist once it has.
    await new Promise((resolve) => setImmediate(resolve));
    const subject = app.get(SessionSubject);
    await subject.createSession(1n);
    await subject.createSession(2n);
    await subject.hasSession(1n);
    const { resourceMetrics, errors } = await reader.collect();
    expect(errors).toEqual([]);
    const names = resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics).map((metric) => metric.descriptor.name);
    expect(names).toEqual(expect.arrayContaining(['mtproto.session.count', 'mtproto.session.lookups', 'mtproto.session.transitions']));
    const count = resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics).find((metric) => metric.descriptor.name === 'mtproto.session.count');
    expect(count?.dataPoints.map((point) => point.value)).toEqual([2]);
  } finally {
    await app.close();
    await provider.shutdown();
    metrics.disable();
  }
});
