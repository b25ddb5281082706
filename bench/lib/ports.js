// Ports on loopback: OS-assigned, so parallel runs never collide, and a wait for a server to
// accept.
import { once } from 'node:events';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { tail } from './procs.js';

/**
 * A port the OS just handed out on `host` and released. Callers retry if another process takes
 * it first.
 * @param {string} [host]
 * @returns {Promise<number>}
 */
export async function freePort(host = '127.0.0.1') {
  const server = net.createServer();
  server.listen({ host, port: 0, exclusive: true });
  await once(server, 'listening');
  const { port } = /** @type {net.AddressInfo} */ (server.address());
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * `host:port` (the last colon separates them) as connect options.
 * @param {string} address
 */
export function splitAddress(address) {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
}

/**
 * Whether something accepts a TCP connection there right now.
 * @param {number} port
 * @param {string} [host]
 * @returns {Promise<boolean>}
 */
export function canConnect(port, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Resolves once something accepts TCP connections on 127.0.0.1:port; rejects if `proc` exits
 * first.
 * @param {number} port
 * @param {import('./procs.js').Proc} [proc]
 * @param {number} [timeoutMs]
 */
export async function waitForPort(port, proc, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc?.ended) {
      throw new Error(`${proc.name} exited during startup\n${tail(proc.stderr || proc.stdout)}`);
    }
    if (await canConnect(port)) return;
    await sleep(50);
  }
  throw new Error(
    `nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms${proc ? ` (${proc.name})` : ''}`,
  );
}
