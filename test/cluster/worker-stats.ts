import type { BackendStats, WorkerStats } from '../../core/cluster/messages.js';
import type { ServiceCounters } from '../../core/counters.js';
import { zeroCounters } from '../../core/counters.js';

/** One backend's row of a worker report: zeros, then `over`. */
export function backendStats(over: Partial<BackendStats> = {}): BackendStats {
  return {
    active: 0,
    total: 0,
    connectFailures: 0,
    bytesIn: 0,
    bytesOut: 0,
    openBytesIn: 0,
    openBytesOut: 0,
    status: {},
    ...over,
  };
}

/** A worker's report for the service `default`, as the aggregate and peer tests feed it. */
export function workerStats(
  backends: Record<string, Partial<BackendStats>>,
  over: { sessions?: number; limit?: number | null; counters?: Partial<ServiceCounters> } = {},
): WorkerStats {
  const sessions = over.sessions ?? 0;
  return {
    capacity: { active: sessions, limit: over.limit ?? null, handed: 0 },
    process: { rss: 0, heapUsed: 0, cpuUser: 0, cpuSystem: 0 },
    services: {
      default: {
        sessions,
        counters: { ...zeroCounters(), dropped: 0, ...over.counters },
        backends: Object.fromEntries(Object.entries(backends).map(([a, b]) => [a, backendStats(b)])),
      },
    },
  };
}
