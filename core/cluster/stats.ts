import type { Runtime } from '../runtime.js';
import type { Backend } from '../types.js';
import type { BackendStats, ServiceStats, WorkerStats } from './messages.js';

/**
 * A worker's numbers for the primary: absolute values, cheap to take every interval. Walks
 * each service's session table once (not per chunk): the bytes of open sessions so far, so the
 * primary's view of a long session moves while it lasts, as the one-process dashboard does.
 * Synchronous, like the core's release (which adds a session's bytes to its backend and drops
 * it from the table in one turn), so each session is counted in `bytesIn` or in
 * `openBytesIn`, never both, never neither.
 */
export function collectStats(runtime: Runtime, handed = 0): WorkerStats {
  const services: Record<string, ServiceStats> = {};
  for (const service of runtime.services.values()) {
    const backends: ServiceStats['backends'] = {};
    const rows = new Map<Backend, BackendStats>();
    for (const b of service.backends.list()) {
      const row: BackendStats = {
        active: b.active,
        total: b.total,
        connectFailures: b.connectFailures,
        bytesIn: b.bytesIn,
        bytesOut: b.bytesOut,
        openBytesIn: 0,
        openBytesOut: 0,
        status: { ...b.status },
      };
      if (b.effectiveWeight < b.weight) row.weightFactor = b.effectiveWeight / b.weight;
      backends[b.address] = row;
      rows.set(b, row);
    }
    // A removed backend's sessions are skipped, as its closed bytes are.
    for (const [b, open] of service.openBytes()) {
      const row = rows.get(b);
      if (row === undefined) continue;
      row.openBytesIn = open.in;
      row.openBytesOut = open.out;
    }
    services[service.name] = { counters: service.counters, sessions: service.sessions.size, backends };
  }
  const { active, limit } = runtime.capacity;
  const memory = process.memoryUsage();
  const cpu = process.cpuUsage();
  return {
    services,
    capacity: { active, limit: Number.isFinite(limit) ? limit : null, handed },
    process: {
      rss: memory.rss,
      heapUsed: memory.heapUsed,
      cpuUser: cpu.user / 1e6,
      cpuSystem: cpu.system / 1e6,
    },
  };
}
