// A benchmark-only process plugin for Switchyard's multi-process mode (`workers: N`), loaded by
// path from the config bench/concurrency/cluster-phase.js generates. It runs in the primary and in
// every worker (process scope, runsIn 'any'). The benchmark has no IPC channel to the workers
// (theirs goes to the primary), so it talks through a signal and files: on SIGUSR2 each process
// runs a full GC (node --expose-gc, inherited by the workers) and writes its own view to
// $SWITCHYARD_BENCH_PROBE_DIR/<pid>.json. It also writes once when applied: the readiness mark
// (a process that has not written yet has no SIGUSR2 handler and must not be signalled).
// It taps no per-connection hook. Not for production.

import cluster from 'node:cluster';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fullGc, heapSpaces, memoryUsage } from '../lib/v8-stats.js';

/**
 * @param {import('../../plugin-sdk/index.js').Runtime} runtime
 * @param {number} seq  increases with every write, so the benchmark tells a fresh file from an old one
 */
function snapshot(runtime, seq) {
  let sessions = 0;
  /** @type {Record<string, number>} */
  const counters = {};
  for (const service of runtime.services.values()) {
    sessions += service.sessions.size;
    for (const [key, value] of Object.entries(service.counters ?? {}))
      if (typeof value === 'number') counters[key] = (counters[key] ?? 0) + value;
  }
  const { limit, active, refused } = runtime.capacity;
  return {
    pid: process.pid,
    role: cluster.isWorker ? 'worker' : 'primary',
    seq,
    sessions,
    counters,
    capacity: { limit: Number.isFinite(limit) ? limit : null, active, refused },
    memory: memoryUsage(),
    heapSpaces: heapSpaces(),
  };
}

/** @type {import('../../plugin-sdk/index.js').ProcessPlugin} */
export default {
  name: 'bench-cluster-probe',
  scope: 'process',
  description:
    'Benchmark probe for workers > 1: GC and a JSON file per process on SIGUSR2 (bench/concurrency only).',
  apply(runtime) {
    const dir = process.env.SWITCHYARD_BENCH_PROBE_DIR;
    if (!dir)
      throw new Error(
        'bench-cluster-probe needs SWITCHYARD_BENCH_PROBE_DIR (bench/concurrency/cluster-phase.js)',
      );
    let seq = 0;
    const write = () => {
      const file = join(dir, `${process.pid}.json`);
      try {
        writeFileSync(`${file}.tmp`, JSON.stringify(snapshot(runtime, seq++)));
        renameSync(`${file}.tmp`, file);
      } catch (err) {
        process.stderr.write(`bench-cluster-probe: ${/** @type {Error} */ (err).message}\n`);
      }
    };
    process.on('SIGUSR2', () => {
      fullGc();
      write();
    });
    write();
  },
};
