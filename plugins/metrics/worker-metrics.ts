import type { Registry } from 'prom-client';
import type { ClusterBridge, WorkerInfo } from '../../plugin-sdk/index.js';
import { registerScraped } from './scraped-metric.js';

type Kind = 'counter' | 'gauge';

/**
 * Cluster primary: one series per live worker process, from the workers' 500 ms reports
 * (`ClusterBridge.workers()`), so memory, CPU and sessions can be watched per worker; a
 * replaced worker's series end with it (labels `worker` and `pid` change). prom-client's
 * `process_*` metrics on the same page describe the primary only.
 */
export function registerWorkerMetrics(registry: Registry, bridge: ClusterBridge): void {
  const each = (kind: Kind, name: string, help: string, value: (w: WorkerInfo) => number | null) =>
    registerScraped(registry, {
      name,
      help,
      type: kind,
      collect(emit) {
        for (const w of bridge.workers()) {
          const v = value(w);
          if (v !== null) emit({ worker: w.id, pid: w.pid, generation: w.generation }, v);
        }
      },
    });
  each('gauge', 'switchyard_worker_sessions', 'Sessions a worker holds.', (w) => w.sessions);
  each(
    'gauge',
    'switchyard_worker_session_limit',
    "A worker's session budget ((open files - 200) / 2).",
    (w) => w.sessionLimit,
  );
  each('gauge', 'switchyard_worker_resident_memory_bytes', "A worker's resident memory (RSS).", (w) => w.rss);
  each('gauge', 'switchyard_worker_heap_used_bytes', "A worker's V8 heap in use.", (w) => w.heapUsed);
  each(
    'counter',
    'switchyard_worker_cpu_user_seconds_total',
    'User CPU time a worker has used.',
    (w) => w.cpuUser,
  );
  each(
    'counter',
    'switchyard_worker_cpu_system_seconds_total',
    'System CPU time a worker has used.',
    (w) => w.cpuSystem,
  );
  each(
    'gauge',
    'switchyard_worker_retiring',
    '1 while a worker of an old generation drains after a reload.',
    (w) => (w.retiring ? 1 : 0),
  );
}
