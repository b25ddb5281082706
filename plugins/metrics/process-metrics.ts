import { collectDefaultMetrics, Registry } from 'prom-client';

let shared: Registry | undefined;

/**
 * prom-client's default process and Node.js metrics (CPU, memory, fds, event loop lag, GC,
 * handles). They describe the process, not a runtime, and their collectors cannot be stopped
 * (an event-loop-delay monitor and a GC observer), so one registry serves every runtime of the
 * process. Guard it with `guardMetrics` before scraping.
 */
export function processRegistry(): Registry {
  if (shared === undefined) {
    shared = new Registry();
    collectDefaultMetrics({ register: shared });
  }
  return shared;
}
