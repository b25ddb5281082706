import { Counter, Registry } from 'prom-client';
import { ADMIN_ROUTES, type AdminRoute, definePlugin, type Service } from '../../plugin-sdk/index.js';
import { registerConnectHistogram } from './connect-histogram.js';
import { processRegistry } from './process-metrics.js';
import { scrape } from './scrape.js';
import { registerServiceMetrics } from './service-metrics.js';
import { type ServiceStats, trackSessions } from './session-stats.js';
import { snapshotter } from './snapshot.js';

export interface MetricsOptions {
  /** Admin API path of the Prometheus text. */
  path: string;
  /** Include prom-client's default process and Node.js metrics. */
  process_metrics: boolean;
  /** Upper bounds (seconds) of the connect-time histogram buckets, increasing. */
  connect_time_buckets: number[];
}

const COLLECT_ERRORS = 'switchyard_metrics_collect_errors_total';
const RENDER_LAST = new Set([COLLECT_ERRORS]);

export const DEFAULT_CONNECT_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/**
 * Prometheus metrics on the admin API. Everything is read from core state when Prometheus
 * scrapes (collect on scrape); on the session path the plugin only fills its connect-time
 * buckets and close-reason counters. Labels are bounded: service, backend address, close
 * reason, rejection reason (capped), status source/value — never anything per client.
 */
export default definePlugin<MetricsOptions>({
  name: 'metrics',
  scope: 'process',
  runsIn: 'primary',
  description: 'Prometheus metrics per service and backend, served on the admin API.',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      path: {
        type: 'string',
        pattern: '^/[^?#\\s]*$',
        default: '/metrics',
        description: 'Admin API path that serves the Prometheus text format.',
      },
      process_metrics: {
        type: 'boolean',
        default: true,
        description:
          "Add prom-client's default process and Node.js metrics (CPU, memory, fds, event loop, GC).",
      },
      connect_time_buckets: {
        type: 'array',
        minItems: 1,
        maxItems: 30,
        items: { type: 'number', exclusiveMinimum: 0 },
        default: DEFAULT_CONNECT_BUCKETS,
        description: 'Upper bounds in seconds of switchyard_backend_connect_seconds, increasing.',
      },
    },
  },
  apply(runtime, options) {
    const bounds = options.connect_time_buckets;
    for (let i = 1; i < bounds.length; i++)
      if (!(bounds[i]! > bounds[i - 1]!)) throw new Error('connect_time_buckets must be strictly increasing');

    const stats = new Map<Service, ServiceStats>();
    for (const service of runtime.services.values()) stats.set(service, trackSessions(service, bounds));

    const registry = new Registry();
    const snapshot = snapshotter(runtime, stats);
    registerServiceMetrics(registry, snapshot);
    registerConnectHistogram(registry, bounds, snapshot);
    const collectErrors = new Counter({
      name: COLLECT_ERRORS,
      help: 'Scrapes in which a metric could not be collected (it was left out of that answer).',
      labelNames: ['metric'],
      registers: [registry],
    });
    const registries = options.process_metrics ? [registry, processRegistry()] : [registry];

    const warned = new Set<string>();
    const onError = (metric: string, err: unknown) => {
      collectErrors.inc({ metric });
      if (warned.has(metric)) return;
      warned.add(metric);
      runtime.log.warn({ err, metric }, 'metrics: a collector failed; the metric is left out while it fails');
    };

    const route: AdminRoute = {
      method: 'GET',
      url: options.path,
      async handler(_request, reply) {
        const text = await scrape(registries, onError, RENDER_LAST);
        return reply.header('content-type', registry.contentType).send(text);
      },
    };
    runtime.contribute(ADMIN_ROUTES, route);

    if (!runtime.config.plugins.some((p) => p.name === 'admin-api'))
      runtime.log.warn('metrics: the admin-api plugin is not enabled, so nothing serves %s', options.path);
  },
});
