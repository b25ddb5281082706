// A benchmark-only process plugin, loaded by path from the generated config: it answers the
// benchmark over the IPC channel with the proxy's own view (bound listeners, session budget,
// counters, memory). It taps no per-connection hook, so it costs the measured sessions nothing.
// Not for production: it needs the IPC channel that run.js opens (stdio fd 3).

import v8 from 'node:v8';
import { fullGc, heapSpaces, memoryUsage } from '../lib/v8-stats.js';

/** @typedef {import('../../plugin-sdk/index.js').Runtime} Runtime */

/** @param {Runtime} runtime */
function snapshot(runtime) {
  const services = [...runtime.services.values()].map((service) => ({
    name: service.name,
    state: service.state,
    addresses: service.state === 'running' ? service.addresses() : [],
    listeners: service.config.listen.length,
    sessions: service.sessions.size,
    counters: service.counters,
  }));
  const { limit, active, refused } = runtime.capacity;
  return {
    capacity: { limit: Number.isFinite(limit) ? limit : null, active, refused },
    services,
    memory: memoryUsage(),
    heapSpaces: heapSpaces(),
  };
}

/** @type {import('../../plugin-sdk/index.js').ProcessPlugin} */
export default {
  name: 'bench-probe',
  scope: 'process',
  description: 'Benchmark probe: counters and memory over the IPC channel (bench/concurrency only).',
  apply(runtime) {
    const send = process.send?.bind(process);
    if (!send) throw new Error('bench-probe needs the IPC channel of bench/concurrency/run.js');
    process.on('message', (/** @type {any} */ msg) => {
      if (msg?.type !== 'probe') return;
      if (msg.gc) fullGc();
      // A heap snapshot for heap-breakdown.js; it opens a file, so never near the fd limit.
      if (typeof msg.heapSnapshot === 'string') v8.writeHeapSnapshot(msg.heapSnapshot);
      send({ type: 'probe', id: msg.id, ...snapshot(runtime) });
    });
    // The benchmark is gone: do not linger holding ports.
    process.on('disconnect', () => process.exit(0));
  },
};
