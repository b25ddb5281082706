// Starting the proxies under test as child processes with an IPC probe: Switchyard from the built
// dist/ with a generated config (plus bench-probe), and the naive baseline.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { request } from '../lib/ipc.js';
import { start, tail } from '../lib/procs.js';

const here = fileURLToPath(new URL('.', import.meta.url));
/** The Switchyard under test: this checkout, or another build (A/B) named by SWITCHYARD_ROOT. */
export const repoRoot = process.env.SWITCHYARD_ROOT ?? join(here, '..', '..');
const naiveScript = fileURLToPath(new URL('../lib/naive-proxy.js', import.meta.url));

/**
 * @typedef {object} Proxy
 * @property {'switchyard' | 'naive'} kind
 * @property {import('../lib/procs.js').Proc} proc
 * @property {string[]} addresses bound listener addresses, host:port
 *
 * @typedef {object} ProxyOptions
 * @property {string} node          the Node binary the proxy runs on
 * @property {string[]} hosts       one listener on each, port 0
 * @property {number[]} backendPorts
 * @property {number} timeoutMs
 */

/**
 * The YAML config of one benchmark proxy: every listener on port 0, round robin, bench-probe.
 * @param {{ hosts: string[], backendPorts: number[], idleTimeout: string | undefined }} o
 */
export function switchyardConfig({ hosts, backendPorts, idleTimeout }) {
  const lines = [
    `listen: [${hosts.map((h) => `'${h}:0'`).join(', ')}]`,
    'backends:',
    ...backendPorts.map((port) => `  - address: '127.0.0.1:${port}'`),
    'connect_timeout: 10s',
  ];
  if (idleTimeout !== undefined) lines.push(idleTimeoutLine(idleTimeout));
  lines.push('plugins:', '  round-robin: {}', `  ${JSON.stringify(join(here, 'probe-plugin.js'))}: {}`);
  return `${lines.join('\n')}\n`;
}

/**
 * `idle_timeout:` as given on the command line: a bare number of ms, or a duration string.
 * @param {string} idleTimeout
 */
export function idleTimeoutLine(idleTimeout) {
  return `idle_timeout: ${/^\d+$/.test(idleTimeout) ? idleTimeout : JSON.stringify(idleTimeout)}`;
}

/**
 * The `bin/switchyard.js` arguments the benchmark starts Switchyard with.
 * @param {string} config
 */
export function switchyardArgs(config) {
  const cli = join(repoRoot, 'dist', 'core', 'cli.js');
  try {
    readFileSync(cli);
  } catch {
    throw new Error(`${cli} is missing: run \`npm run build\` first`);
  }
  return [
    '--expose-gc',
    join(repoRoot, 'bin', 'switchyard.js'),
    '--config',
    config,
    '--no-pretty',
    '--log-level',
    'warn',
  ];
}

/**
 * @param {ProxyOptions & { dir: string, idleTimeout: string | undefined }} o
 * @returns {Promise<Proxy>}
 */
export async function startSwitchyard({ node, dir, hosts, backendPorts, idleTimeout, timeoutMs }) {
  const config = join(dir, 'switchyard.yaml');
  writeFileSync(config, switchyardConfig({ hosts, backendPorts, idleTimeout }));
  const proc = start(node, switchyardArgs(config), { name: 'switchyard', cwd: repoRoot, ipc: true });
  const addresses = await waitForListeners(proc, hosts.length, timeoutMs);
  return { kind: 'switchyard', proc, addresses };
}

/**
 * @param {ProxyOptions} o
 * @returns {Promise<Proxy>}
 */
export async function startNaive({ node, hosts, backendPorts, timeoutMs }) {
  const spec = JSON.stringify({ listen: hosts, backends: backendPorts });
  const proc = start(node, ['--expose-gc', naiveScript, spec], { name: 'naive proxy', ipc: true });
  const addresses = await waitForListeners(proc, hosts.length, timeoutMs);
  return { kind: 'naive', proc, addresses };
}

/**
 * Probes until every listener is bound. The probe is the readiness signal: it answers only once
 * the proxy has loaded its plugins, and lists only bound listeners.
 * @param {import('../lib/procs.js').Proc} proc
 * @param {number} count
 * @param {number} timeoutMs
 */
async function waitForListeners(proc, count, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !proc.ended) {
    try {
      const probe = await request(proc, { type: 'probe' }, 'probe', 500);
      const addresses = listenerAddresses(probe);
      if (addresses.length === count) return addresses;
    } catch {
      // not loaded yet
    }
    await sleep(100);
  }
  const why = proc.ended
    ? 'exited during startup'
    : `not listening on ${count} addresses within ${timeoutMs} ms`;
  throw new Error(`${proc.name}: ${why}\n${tail(proc.stderr || proc.stdout)}`);
}

/**
 * Listener addresses from either proxy's probe reply.
 * @param {any} probe
 * @returns {string[]}
 */
function listenerAddresses(probe) {
  /** @type {(string | null)[]} */
  const list = probe.services
    ? probe.services.flatMap((/** @type {{ addresses: string[] }} */ s) => s.addresses)
    : probe.addresses;
  return list.filter((a) => a !== null);
}

/**
 * @typedef {object} ProbeReply
 * @property {number} active        sessions (Switchyard) or client connections (naive) held
 * @property {NodeJS.MemoryUsage | null} memory
 * @property {Record<string, { size: number, used: number, physical: number }>} heapSpaces
 * @property {{ limit: number | null, active: number, refused: number }} [capacity]
 * @property {Record<string, number>} [counters]
 */

/**
 * The proxy's own view: memory (after a full GC when `gc`), V8 heap spaces, sessions it holds
 * and, for Switchyard, its session budget and counters. `heapSnapshot`: also write one there.
 * @param {Proxy} proxy
 * @param {{ gc?: boolean, heapSnapshot?: string, timeoutMs?: number }} [options]
 * @returns {Promise<ProbeReply>}
 */
export async function probe(proxy, { gc = false, heapSnapshot = undefined, timeoutMs = 10_000 } = {}) {
  const reply = await request(proxy.proc, { type: 'probe', gc, heapSnapshot }, 'probe', timeoutMs);
  if (proxy.kind === 'naive')
    return { active: reply.active, memory: reply.memory, heapSpaces: reply.heapSpaces };
  const service = reply.services[0];
  return {
    active: reply.capacity.active,
    memory: reply.memory,
    heapSpaces: reply.heapSpaces,
    capacity: reply.capacity,
    counters: service.counters,
  };
}
