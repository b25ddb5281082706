// The echo backends of the concurrency benchmark: one child process each, shared by every phase.
import { fileURLToPath } from 'node:url';
import { request, waitForMessage } from '../lib/ipc.js';
import { start } from '../lib/procs.js';

const script = fileURLToPath(new URL('echo-backend.js', import.meta.url));

/** @typedef {{ ports: number[], connections: () => Promise<number> }} Backends */

/**
 * Starts `count` echo backends on 127.0.0.1 (OS-assigned ports), on the runner's Node.
 * @param {number} count
 * @param {number} timeoutMs
 * @returns {Promise<Backends>}
 */
export async function startBackends(count, timeoutMs) {
  const procs = Array.from({ length: count }, (_, i) =>
    start(process.execPath, [script], { name: `echo backend ${i}`, ipc: true }),
  );
  const ports = await Promise.all(
    procs.map(async (proc) => /** @type {number} */ ((await waitForMessage(proc, 'ready', timeoutMs)).port)),
  );
  return {
    ports,
    /** Connections open at the backends right now, all together. */
    async connections() {
      const replies = await Promise.all(procs.map((p) => request(p, { type: 'count' }, 'count', 10_000)));
      return replies.reduce((sum, r) => sum + r.connections, 0);
    },
  };
}
