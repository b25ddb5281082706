// Starting the proxies under test as child processes with an IPC probe: Switchyard from the built
// dist/ with a generated config (plus bench-probe), and the naive baseline.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { hasExited, request, spawnNode, tail } from './children.js';

const here = fileURLToPath(new URL('.', import.meta.url));
/** The Switchyard under test: this checkout, or another build (A/B) named by SWITCHYARD_ROOT. */
export const repoRoot = process.env.SWITCHYARD_ROOT ?? join(here, '..', '..');

/**
 * @typedef {object} Proxy
 * @property {'switchyard' | 'naive'} kind
 * @property {import('./children.js').Child} proc
 * @property {string[]} addresses bound listener addresses, host:port
 */

/** The YAML config of one benchmark proxy: every listener on port 0, round robin, bench-probe. */
export function switchyardConfig({ hosts, backendPorts, idleTimeout }) {
  const lines = [
    `listen: [${hosts.map((h) => `'${h}:0'`).join(', ')}]`,
    'backends:',
    ...backendPorts.map((port) => `  - address: '127.0.0.1:${port}'`),
    'connect_timeout: 10s',
  ];
  if (idleTimeout !== undefined)
    lines.push(`idle_timeout: ${/^\d+$/.test(idleTimeout) ? idleTimeout : JSON.stringify(idleTimeout)}`);
  lines.push('plugins:', '  round-robin: {}', `  ${JSON.stringify(join(here, 'probe-plugin.js'))}: {}`);
  return `${lines.join('\n')}\n`;
}

/** @returns {Promise<Proxy>} */
export async function startSwitchyard({ dir, hosts, backendPorts, idleTimeout, timeoutMs }) {
  const cli = join(repoRoot, 'dist', 'core', 'cli.js');
  try {
    readFileSync(cli);
  } catch {
    throw new Error(`${cli} is missing: run \`npm run build\` first`);
  }
  const config = join(dir, 'switchyard.yaml');
  writeFileSync(config, switchyardConfig({ hosts, backendPorts, idleTimeout }));
  const args = ['--expose-gc', join(repoRoot, 'bin', 'switchyard.js')];
  args.push('--config', config, '--no-pretty', '--log-level', 'warn');
  const proc = spawnNode('switchyard', args, { cwd: repoRoot });
  const addresses = await waitForListeners(proc, hosts.length, timeoutMs);
  return { kind: 'switchyard', proc, addresses };
}

/** @returns {Promise<Proxy>} */
export async function startNaive({ hosts, backendPorts, timeoutMs }) {
  const spec = JSON.stringify({ listen: hosts, backends: backendPorts });
  const proc = spawnNode('naive proxy', ['--expose-gc', join(here, 'naive-proxy.js'), spec]);
  const addresses = await waitForListeners(proc, hosts.length, timeoutMs);
  return { kind: 'naive', proc, addresses };
}

/**
 * Probes until every listener is bound. The probe is the readiness signal: it answers only once
 * the proxy has loaded its plugins, and lists only bound listeners.
 */
async function waitForListeners(proc, count, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !hasExited(proc)) {
    try {
      const probe = await request(proc, { type: 'probe' }, 'probe', 500);
      const addresses = listenerAddresses(probe);
      if (addresses.length === count) return addresses;
    } catch {
      // not loaded yet
    }
    await sleep(100);
  }
  const why = hasExited(proc)
    ? 'exited during startup'
    : `not listening on ${count} addresses within ${timeoutMs} ms`;
  throw new Error(`${proc.name}: ${why}\n${tail(proc.stderr || proc.stdout)}`);
}

/** Listener addresses from either proxy's probe reply. */
function listenerAddresses(probe) {
  const list = probe.services ? probe.services.flatMap((s) => s.addresses) : probe.addresses;
  return list.filter((a) => a !== null);
}

/**
 * The proxy's own view: memory (after a full GC when `gc`), V8 heap spaces, sessions it holds
 * and, for Switchyard, its session budget and counters. `heapSnapshot`: also write one there.
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
