import { Counter, Registry } from 'prom-client';
import {
  ADMIN_ROUTES,
  type AdminRoute,
  type Backend,
  CLUSTER,
  type ClusterBridge,
  definePlugin,
  durationSchema,
  ENDPOINTS,
  type Endpoint,
  type Runtime,
  type Service,
} from '../../plugin-sdk/index.js';
import { registerConnectHistogram } from './connect-histogram.js';
import { registerDiscoveryMetrics } from './discovery-metrics.js';
import { processRegistry } from './process-metrics.js';
import { scrape } from './scrape.js';
import { registerServiceMetrics } from './service-metrics.js';
import { type ServiceStats, trackSessions } from './session-stats.js';
import { snapshotter } from './snapshot.js';
import { registerWorkerMetrics } from './worker-metrics.js';
import { serveWorkerReports } from './worker-report.js';
import { WorkerTotals } from './worker-totals.js';

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

const COLLECT_ERRORS = 'switchyard_metrics_collect_errors_total';
const WORKER_TIMEOUTS = 'switchyard_metrics_worker_timeouts_total';
/** Between two warnings about workers that do not answer a scrape. */
const TIMEOUT_WARN_INTERVAL = 60_000;
const RENDER_LAST = new Set([COLLECT_ERRORS]);

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
  apply(runtime, options) {
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

    const registry = new Registry();
    const collectErrors = new Counter({
      name: COLLECT_ERRORS,
      help: 'Scrapes in which a metric could not be collected (it was left out of that answer).',
      labelNames: ['metric'],
      registers: [],
    });
    const warned = new Set<string>();
    const onError = (metric: string, err: unknown) => {
      collectErrors.inc({ metric });
      if (warned.has(metric)) return;
      warned.add(metric);
      runtime.log.warn({ err, metric }, 'metrics: a collector failed; the metric is left out while it fails');
    };

    const sessions =
      runtime.role === 'primary'
        ? workerSessions(runtime, bridge, registry, options, onError)
        : localSessions(runtime, bounds);
    const snapshot = snapshotter(runtime, sessions.statsOf);
    registerServiceMetrics(registry, snapshot);
    registerConnectHistogram(registry, bounds, snapshot);
    registerDiscoveryMetrics(registry, runtime);
    if (runtime.role === 'primary' && bridge !== undefined) registerWorkerMetrics(registry, bridge);
    registry.registerMetric(collectErrors);
    const registries = options.process_metrics ? [registry, processRegistry()] : [registry];

    const refresh = sessions.refresh;
    const api: MetricsApi = {
      connectTimes(service) {
        const backends = sessions.statsOf(service).backends;
        return (backend) => {
          const h = backends.get(backend)?.connectTimes;
          return h === undefined ? undefined : { sum: h.sum, count: h.count };
        };
      },
    };
    if (refresh !== undefined) api.refresh = refresh;
    runtime.provide<MetricsApi>('metrics', api);
    const route: AdminRoute = {
      method: 'GET',
      url: options.path,
      async handler(_request, reply) {
        if (refresh !== undefined) await refresh();
        const text = await scrape(registries, onError, RENDER_LAST);
        return reply.header('content-type', registry.contentType).send(text);
      },
    };
    runtime.contribute(ADMIN_ROUTES, route);
    runtime.contribute<Endpoint>(ENDPOINTS, {
      name: 'metrics',
      url() {
        const address = runtime.use<{ address?: () => string | null }>('admin-api')?.address?.();
        return address ? `http://${address}${options.path}` : null;
      },
    });

    if (!runtime.config.plugins.some((p) => p.name === 'admin-api'))
      runtime.log.warn('metrics: the admin-api plugin is not enabled, so nothing serves %s', options.path);
  },
});

/** Where the per-session numbers of a scrape come from. */
interface SessionSource {
  statsOf(service: Service): ServiceStats;
  /** Brings the numbers up to date before a scrape renders (cluster primary only). */
  refresh?: () => Promise<void>;
}

/** One process: the plugin taps its own services' sessions. */
function localSessions(runtime: Runtime, bounds: readonly number[]): SessionSource {
  const stats = new Map<Service, ServiceStats>();
  for (const service of runtime.services.values()) stats.set(service, trackSessions(service, bounds));
  return { statsOf: (service) => stats.get(service)! };
}

/**
 * Cluster primary: sessions live in the workers; each scrape asks them (bounded by
 * `worker_timeout`) and renders the sums. A worker that does not answer in time is counted
 * in `switchyard_metrics_worker_timeouts_total` and shows its previous numbers.
 */
function workerSessions(
  runtime: Runtime,
  bridge: ClusterBridge | undefined,
  registry: Registry,
  options: MetricsOptions,
  onError: (metric: string, err: unknown) => void,
): SessionSource {
  const timeouts = new Counter({
    name: WORKER_TIMEOUTS,
    help: 'Workers that did not answer a scrape within worker_timeout (their previous per-session numbers were used).',
    registers: [registry],
  });
  let warnedAt = Number.NEGATIVE_INFINITY;
  const totals = new WorkerTotals({
    bounds: options.connect_time_buckets,
    onMissing(missing) {
      timeouts.inc(missing);
      const now = Date.now();
      if (now - warnedAt < TIMEOUT_WARN_INTERVAL) return;
      warnedAt = now;
      runtime.log.warn(
        { missing, timeout: options.worker_timeout },
        'metrics: workers did not answer a scrape in time; their previous per-session numbers are shown',
      );
    },
  });
  return {
    statsOf: (service) => totals.statsOf(service),
    async refresh() {
      if (bridge === undefined) return;
      try {
        await totals.refresh(bridge, options.worker_timeout);
      } catch (err) {
        // Never fails the scrape: the previous sums are rendered.
        onError('worker_session_stats', err);
      }
    },
  };
}
