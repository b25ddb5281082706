// A benchmark-only process plugin, loaded by path from the generated config: it answers the
// benchmark over the IPC channel with the proxy's own view (bound listeners, session budget,
// counters, memory). It taps no per-connection hook, so it costs the measured sessions nothing.
// Not for production: it needs the IPC channel that run.js opens (stdio fd 3).

import v8 from 'node:v8';

/** V8's heap by space, in bytes: what is reserved, used, and resident (physical). */
function heapSpaces() {
  const spaces = {};
  for (const s of v8.getHeapSpaceStatistics()) {
    if (s.space_size > 0)
      spaces[s.space_name] = { size: s.space_size, used: s.space_used_size, physical: s.physical_space_size };
  }
  return spaces;
}

/** @param {import('../../dist/core/runtime.js').Runtime} runtime */
function snapshot(runtime) {
  let memory = null;
  try {
    memory = process.memoryUsage(); // throws EMFILE at the fd limit
  } catch {}
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
    memory,
    heapSpaces: heapSpaces(),
  };
}

export default {
  name: 'bench-probe',
  scope: 'process',
  description: 'Benchmark probe: counters and memory over the IPC channel (bench/concurrency only).',
  /** @param {import('../../dist/core/runtime.js').Runtime} runtime */
  apply(runtime) {
    if (typeof process.send !== 'function')
      throw new Error('bench-probe needs the IPC channel of bench/concurrency/run.js');
    process.on('message', (msg) => {
      if (msg?.type !== 'probe') return;
      if (msg.gc && typeof globalThis.gc === 'function') globalThis.gc();
      // A heap snapshot for heap-breakdown.js; it opens a file, so never near the fd limit.
      if (typeof msg.heapSnapshot === 'string') v8.writeHeapSnapshot(msg.heapSnapshot);
      process.send({ type: 'probe', id: msg.id, ...snapshot(runtime) });
    });
    // The benchmark is gone: do not linger holding ports.
    process.on('disconnect', () => process.exit(0));
  },
};
