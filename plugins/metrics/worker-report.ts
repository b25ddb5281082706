import cluster from 'node:cluster';
import type { ClusterBridge, Runtime, Service } from '../../plugin-sdk/index.js';
import { backendViews } from './backend-view.js';
import { type ServiceStats, trackSessions } from './session-stats.js';

/** Bridge topic: at each scrape the primary asks every worker for its per-session numbers. */
export const SESSION_STATS_TOPIC = 'metrics:session-stats';

/** One backend's per-session numbers in one worker, as sent over IPC (absolute, never deltas). */
export interface BackendReport {
  /** Connect-time bucket counts, not cumulative; the last one is +Inf. */
  counts: number[];
  sum: number;
  count: number;
  /** Close reasons of sessions piped to this backend (only those that happened). */
  closed: Record<string, number>;
}

export interface ServiceReport {
  closedUnconnected: Record<string, number>;
  rejections: Record<string, number>;
  /** By backend address. */
  backends: Record<string, BackendReport>;
}

/** A worker's answer on SESSION_STATS_TOPIC: everything it counted since it started. */
export interface WorkerReport {
  /** node:cluster's worker id (never reused while the primary lives) and the pid. */
  worker: number;
  pid: number;
  /** The worker's `connect_time_buckets` (a reload may give new workers other bounds). */
  bounds: number[];
  /** By service name. */
  services: Record<string, ServiceReport>;
}

/**
 * Worker side: counts this worker's sessions with the same taps as one process does, and
 * answers the primary's scrape requests with a JSON copy. Nothing else runs in a worker (no
 * registry, no admin route, no process metrics: the primary serves those).
 */
export function serveWorkerReports(runtime: Runtime, bridge: ClusterBridge, bounds: readonly number[]): void {
  const stats = new Map<Service, ServiceStats>();
  for (const service of runtime.services.values()) stats.set(service, trackSessions(service, bounds));
  bridge.handle(SESSION_STATS_TOPIC, () => workerReport(stats, bounds));
}

export function workerReport(
  stats: ReadonlyMap<Service, ServiceStats>,
  bounds: readonly number[],
): WorkerReport {
  const services: Record<string, ServiceReport> = {};
  for (const [service, s] of stats) {
    const backends: Record<string, BackendReport> = {};
    // Registered backends and removed ones still draining, as a scrape in one process shows them.
    for (const { backend } of backendViews(service)) {
      const b = s.backends.get(backend);
      if (b === undefined) continue;
      const closed: Record<string, number> = {};
      for (const [reason, n] of Object.entries(b.closed)) if (n > 0) closed[reason] = n;
      const h = b.connectTimes;
      backends[backend.address] = { counts: Array.from(h.counts), sum: h.sum, count: h.count, closed };
    }
    services[service.name] = {
      closedUnconnected: { ...s.closedUnconnected },
      rejections: Object.fromEntries(s.rejections),
      backends,
    };
  }
  return { worker: cluster.worker?.id ?? 0, pid: process.pid, bounds: [...bounds], services };
}
