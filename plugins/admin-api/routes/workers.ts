import type { AdminRoute, ClusterBridge, WorkerInfo } from '../../../plugin-sdk/index.js';
import { CLUSTER } from '../../../plugin-sdk/index.js';
import type { AdminContext } from '../context.js';

/**
 * `GET /workers`: the processes that proxy. In a cluster, every live worker as of its last
 * report (≤ 500 ms old); with one process, that process as worker 0, so tools need no case.
 */
export function workerRoutes(ctx: AdminContext): AdminRoute[] {
  return [
    {
      method: 'GET',
      url: '/workers',
      handler: async () => {
        const bridge = ctx.runtime.use<ClusterBridge>(CLUSTER);
        if (ctx.runtime.role === 'primary' && bridge !== undefined)
          return { mode: 'cluster', primaryPid: process.pid, workers: bridge.workers() };
        return { mode: 'single', primaryPid: null, workers: [self(ctx)] };
      },
    },
  ];
}

function self(ctx: AdminContext): WorkerInfo {
  const { active, limit } = ctx.runtime.capacity;
  const memory = process.memoryUsage();
  const cpu = process.cpuUsage();
  return {
    id: 0,
    pid: process.pid,
    generation: 0,
    retiring: false,
    sessions: active,
    sessionLimit: Number.isFinite(limit) ? limit : null,
    rss: memory.rss,
    heapUsed: memory.heapUsed,
    cpuUser: cpu.user / 1e6,
    cpuSystem: cpu.system / 1e6,
  };
}
