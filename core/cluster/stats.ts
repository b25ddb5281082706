import type { Runtime } from '../runtime.js';
import type { ServiceStats, WorkerStats } from './messages.js';

/** A worker's numbers for the primary: absolute values, cheap to take every interval. */
export function collectStats(runtime: Runtime, handed = 0): WorkerStats {
  const services: Record<string, ServiceStats> = {};
  for (const service of runtime.services.values()) {
    const backends: ServiceStats['backends'] = {};
    for (const b of service.backends.list()) {
      backends[b.address] = {
        active: b.active,
        total: b.total,
        connectFailures: b.connectFailures,
        bytesIn: b.bytesIn,
        bytesOut: b.bytesOut,
        status: { ...b.status },
      };
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
