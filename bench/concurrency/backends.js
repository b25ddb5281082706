// The echo backends of the concurrency benchmark: one child process each, shared by every phase.
import { fileURLToPath } from 'node:url';
import { request, spawnNode, tail } from './children.js';

const script = fileURLToPath(new URL('echo-backend.js', import.meta.url));

/**
 * Starts `count` echo backends on 127.0.0.1 (OS-assigned ports).
 * @returns {Promise<{ ports: number[], connections: () => Promise<number> }>}
 */
export async function startBackends(count, timeoutMs) {
  const procs = Array.from({ length: count }, (_, i) => spawnNode(`echo backend ${i}`, [script]));
  const ports = await Promise.all(procs.map((proc) => readyPort(proc, timeoutMs)));
  return {
    ports,
    /** Connections open at the backends right now, all together. */
    async connections() {
      const replies = await Promise.all(procs.map((p) => request(p, { type: 'count' }, 'count', 10_000)));
      return replies.reduce((sum, r) => sum + r.connections, 0);
    },
  };
}

function readyPort(proc, timeoutMs) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${proc.name}: not ready within ${timeoutMs} ms`)),
      timeoutMs,
    );
    proc.child.on('message', (msg) => {
      if (msg?.type !== 'ready') return;
      clearTimeout(timer);
      resolve(msg.port);
    });
    proc.exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${proc.name} exited during startup\n${tail(proc.stderr)}`));
    });
  });
}
