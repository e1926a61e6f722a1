import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';

/**
 * The OpenTelemetry SDK for the sample: a meter provider whose one reader is
 * the Prometheus exporter, without a server of its own (the app serves it at
 * `GET /metrics`). Registered as the global provider, which is where the
 * package's metrics go.
 */
export const prometheusExporter = new PrometheusExporter({ preventServerStart: true });
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [prometheusExporter] }));
