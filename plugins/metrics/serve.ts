import { Counter, Registry } from 'prom-client';
import {
  ADMIN_ROUTES,
  type AdminRoute,
  type ClusterBridge,
  ENDPOINTS,
  type Endpoint,
  type Runtime,
  type Service,
} from '../../plugin-sdk/index.js';
import { registerConnectHistogram } from './connect-histogram.js';
import { registerDiscoveryMetrics } from './discovery-metrics.js';
import type { MetricsApi, MetricsOptions } from './index.js';
import { registerListenerMetrics } from './listener-metrics.js';
import { processRegistry } from './process-metrics.js';
import { scrape } from './scrape.js';
import { registerServiceMetrics } from './service-metrics.js';
import { type ServiceStats, trackSessions } from './session-stats.js';
import { snapshotter } from './snapshot.js';
import { registerWorkerMetrics } from './worker-metrics.js';
import { WorkerTotals } from './worker-totals.js';

const COLLECT_ERRORS = 'switchyard_metrics_collect_errors_total';
const WORKER_TIMEOUTS = 'switchyard_metrics_worker_timeouts_total';
/** Between two warnings about workers that do not answer a scrape. */
const TIMEOUT_WARN_INTERVAL = 60_000;
const RENDER_LAST = new Set([COLLECT_ERRORS]);

/**
 * One process, or a cluster primary: the registry, its collectors and the admin route that
 * serves it. (Cluster workers only count their sessions: worker-report.ts.)
 */
export function serveMetrics(
  runtime: Runtime,
  bridge: ClusterBridge | undefined,
  options: MetricsOptions,
): void {
  const bounds = options.connect_time_buckets;
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
  registerListenerMetrics(registry, runtime);
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
}

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
