// The servers the workloads talk to: one iperf3 server and one redis-server, each on a free port.
import { freePort, waitForPort } from './ports.js';
import { start, stop } from './procs.js';

/**
 * @typedef {{ name: string, port: number, stop(): Promise<void> }} Backend
 */

/** @returns {Promise<Backend>} */
export async function startIperf3() {
  return startOnFreePort('iperf3', (port) => ['-s', '-p', String(port)]);
}

/** @returns {Promise<Backend>} */
export async function startRedis() {
  return startOnFreePort('redis-server', (port) => [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    // Churn opens tens of thousands of connections; the default 10000 clients is plenty but the
    // default TCP backlog (511) must not be the bottleneck.
    '--tcp-backlog',
    '4096',
    '--protected-mode',
    'no',
    '--loglevel',
    'warning',
  ]);
}

/**
 * A port can be taken between `freePort` and bind; try a few.
 * @param {string} cmd
 * @param {(port: number) => string[]} argsFor
 * @returns {Promise<Backend>}
 */
async function startOnFreePort(cmd, argsFor) {
  let lastError;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const proc = start(cmd, argsFor(port));
    try {
      await waitForPort(port, proc);
      return { name: cmd, port, stop: () => stop(proc) };
    } catch (err) {
      lastError = err;
      await stop(proc);
    }
  }
  throw lastError;
}
