import type { Runtime, Service } from '../../plugin-sdk/index.js';
import { type BackendView, backendViews } from './backend-view.js';
import type { ServiceStats } from './session-stats.js';

/** One service as one scrape sees it. */
export interface ServiceSnapshot {
  service: Service;
  counters: Service['counters'];
  backends: BackendView[];
  stats: ServiceStats;
}

/**
 * Returns the state of every service, built once per scrape: `scrape()` starts every metric's
 * `get()` in one synchronous run (the registry awaits each only after calling it), so the
 * snapshot is dropped at the next microtask. All metrics of a scrape then agree with each
 * other, and the session table is walked once. `statsOf` gives the plugin's own per-session
 * numbers of a service: this process's (one process) or the workers' sum (cluster primary).
 */
export function snapshotter(runtime: Runtime, statsOf: (service: Service) => ServiceStats) {
  let cached: ServiceSnapshot[] | undefined;
  return (): ServiceSnapshot[] => {
    if (cached === undefined) {
      cached = [];
      for (const service of runtime.services.values()) {
        cached.push({
          service,
          counters: service.counters,
          backends: backendViews(service),
          stats: statsOf(service),
        });
      }
      queueMicrotask(() => {
        cached = undefined;
      });
    }
    return cached;
  };
}
