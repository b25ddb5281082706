import {
  type Backend,
  CLUSTER,
  type ClusterBridge,
  definePlugin,
  durationSchema,
  type Service,
} from '../../plugin-sdk/index.js';
import { serveWorkerReports } from './worker-report.js';

export interface MetricsOptions {
  /** Admin API path of the Prometheus text. */
  path: string;
  /** Include prom-client's default process and Node.js metrics. */
  process_metrics: boolean;
  /** Upper bounds (seconds) of the connect-time histogram buckets, increasing. */
  connect_time_buckets: number[];
  /** Cluster primary: how long a scrape waits for each worker's per-session numbers (ms). */
  worker_timeout: number;
}

/**
 * What the plugin shares with other plugins (`runtime.use<MetricsApi>('metrics')`, primary or
 * one process): the per-backend numbers it counts itself, so a plugin that wants them (the
 * dashboard's history) needs no tap of its own on the session path.
 */
export interface MetricsApi {
  /**
   * Connect times counted so far in one service: a lookup giving a backend's sum (seconds) and
   * count, undefined before its first. Take one lookup per read: it is a snapshot.
   */
  connectTimes(service: Service): (backend: Backend) => { sum: number; count: number } | undefined;
  /**
   * Cluster primary: asks the workers for their numbers (shared with a scrape in flight,
   * bounded by `worker_timeout`); never rejects. Absent with one process, where they are live.
   */
  refresh?: () => Promise<void>;
}

export const DEFAULT_CONNECT_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/**
 * Prometheus metrics on the admin API. Everything is read from core state when Prometheus
 * scrapes (collect on scrape); on the session path the plugin only fills its connect-time
 * buckets and close-reason counters. Labels are bounded: service, backend address, close
 * reason, rejection reason (capped), status source/value — never anything per client.
 * With several workers it runs everywhere: workers only count their sessions and answer the
 * primary, which serves the route and sums their answers at each scrape (README.md).
 */
export default definePlugin<MetricsOptions>({
  name: 'metrics',
  scope: 'process',
  runsIn: 'any',
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
      worker_timeout: durationSchema(
        "With workers > 1: how long a scrape waits for each worker's per-session numbers before using its previous ones (1ms to 1m).",
        { default: '1s' },
      ),
    },
  },
  async apply(runtime, options) {
    const bounds = options.connect_time_buckets;
    for (let i = 1; i < bounds.length; i++)
      if (!(bounds[i]! > bounds[i - 1]!)) throw new Error('connect_time_buckets must be strictly increasing');
    if (options.worker_timeout < 1 || options.worker_timeout > 60_000)
      throw new Error('worker_timeout must be between 1ms and 1m');

    const bridge = runtime.use<ClusterBridge>(CLUSTER);
    if (runtime.role === 'worker') {
      // The primary serves the route and the registry; a worker only counts its sessions.
      if (bridge !== undefined) serveWorkerReports(runtime, bridge, bounds);
      return;
    }
    // The registry and prom-client load here only: workers import this module for its schema.
    const { serveMetrics } = await import('./serve.js');
    serveMetrics(runtime, bridge, options);
  },
});
