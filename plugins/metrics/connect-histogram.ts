import type { Metric, Registry } from 'prom-client';
import type { ServiceSnapshot } from './snapshot.js';

interface Sample {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

/**
 * `switchyard_backend_connect_seconds`, a histogram per (service, backend) in the shape
 * prom-client's registry formats. It is not a prom-client `Histogram` because
 * `Histogram.observe` costs about 1 µs and several allocations per call (label validation and
 * hashing); the plugin's own per-backend buckets cost ~20 ns per session and nothing at all
 * until a scrape reads them.
 */
export function registerConnectHistogram(
  registry: Registry,
  bounds: readonly number[],
  snapshot: () => ServiceSnapshot[],
): void {
  const name = 'switchyard_backend_connect_seconds';
  const metric = {
    name,
    help: 'Time from accepting the client to the backend connection being ready (includes failed attempts on other backends; 1 ms resolution).',
    type: 'histogram',
    aggregator: 'sum',
    async get() {
      const values: Sample[] = [];
      for (const { service, backends, stats } of snapshot()) {
        for (const { backend } of backends) {
          const h = stats.backends.get(backend)?.connectTimes;
          const base = { service: service.name, backend: backend.address };
          let cumulative = 0;
          for (let i = 0; i <= bounds.length; i++) {
            cumulative += h?.counts[i] ?? 0;
            values.push({
              metricName: `${name}_bucket`,
              labels: { ...base, le: i < bounds.length ? bounds[i]! : '+Inf' },
              value: cumulative,
            });
          }
          values.push({ metricName: `${name}_sum`, labels: base, value: h?.sum ?? 0 });
          values.push({ metricName: `${name}_count`, labels: base, value: h?.count ?? 0 });
        }
      }
      return { name, help: metric.help, type: metric.type, aggregator: metric.aggregator, values };
    },
  };
  registry.registerMetric(metric as unknown as Metric);
}
