// One multi-process phase of the concurrency benchmark: Switchyard with `workers: N` (a cluster
// primary and N workers sharing the listeners), ramped to a target number of held connections
// by several load clients, then measured over every proxy process: RSS summed over the primary
// and its workers, sessions per worker, sockets per process, and one byte echoed through every
// held connection. Every wait is bounded by its own timeout and by the run's deadline; the
// primary leads its own process group, and the whole group is killed at the end.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { request, waitForMessage } from '../lib/ipc.js';
import { canConnect, freePort, splitAddress } from '../lib/ports.js';
import { childPids, descriptors, residentKiB } from '../lib/proc-stats.js';
import { kill, start, tail } from '../lib/procs.js';
import { fmt } from './format.js';
import {
  clientStats,
  echoAll,
  remainingUntil,
  rotate,
  split,
  total,
  waitForBackendsIdle,
} from './phase-steps.js';
import { idleTimeoutLine, repoRoot, switchyardArgs } from './proxies.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const clientScript = join(here, 'load-client.js');
const MAX_PENDING_PER_CLIENT = 200;

/**
 * @typedef {object} ClusterPhaseOptions
 * @property {string} name
 * @property {string} node  the Node binary the proxy runs on
 * @property {number} workers
 * @property {'auto' | 'reuseport' | 'rr' | 'none'} scheduling
 * @property {number | undefined} semiSpace  worker_semi_space (MiB); undefined: Node's default
 * @property {number} target
 * @property {number} clients
 * @property {number} rate
 * @property {string[]} hosts
 * @property {import('./backends.js').Backends} backends
 * @property {string} dir
 * @property {string | undefined} idleTimeout
 * @property {number} deadline
 * @property {(line: string) => void} say
 */

/**
 * @typedef {import('../lib/procs.js').Proc} Proc
 * @typedef {import('./phase-steps.js').Remaining} Remaining
 * @typedef {{ primary: number, workers: number[] }} Pids
 */

/**
 * The YAML config: N workers, every listener on a port picked just before, round robin.
 * @param {{ workers: number, scheduling: string, semiSpace: number | undefined, listen: string[],
 *   backendPorts: number[], idleTimeout: string | undefined }} o
 */
export function clusterConfig({ workers, scheduling, semiSpace, listen, backendPorts, idleTimeout }) {
  const lines = [
    `workers: ${workers}`,
    `scheduling: ${scheduling}`,
    ...(semiSpace === undefined ? [] : [`worker_semi_space: ${semiSpace}`]),
    `listen: [${listen.map((a) => `'${a}'`).join(', ')}]`,
    'backends:',
    ...backendPorts.map((port) => `  - address: '127.0.0.1:${port}'`),
    'connect_timeout: 10s',
  ];
  if (idleTimeout !== undefined) lines.push(idleTimeoutLine(idleTimeout));
  lines.push(
    'plugins:',
    '  round-robin: {}',
    `  ${JSON.stringify(join(here, 'cluster-probe-plugin.js'))}: {}`,
  );
  return `${lines.join('\n')}\n`;
}

/**
 * @param {ClusterPhaseOptions} o
 * @returns {Promise<Record<string, any>>} what cluster-report.js prints
 */
export async function runClusterPhase(o) {
  const remaining = remainingUntil(o.name, o.deadline);
  /** @type {Record<string, any>} */
  const result = {
    name: o.name,
    kind: 'cluster',
    workers: o.workers,
    scheduling: o.scheduling,
    semiSpace: o.semiSpace,
    target: o.target,
  };
  const probeDir = join(o.dir, `probe-${o.scheduling}-${Date.now()}`);
  mkdirSync(probeDir);
  /** @type {Proc | undefined} */
  let proxy;
  /** @type {Proc[]} */
  const clients = [];
  try {
    // Port 0 cannot be used: nothing tells the benchmark which port a cluster bound. A port
    // free a moment ago on each address is as good, on loopback.
    const listen = await Promise.all(o.hosts.map(async (h) => `${h}:${await freePort(h)}`));
    const config = join(o.dir, `switchyard-${o.scheduling}.yaml`);
    writeFileSync(
      config,
      clusterConfig({ ...o, listen, backendPorts: o.backends.ports, idleTimeout: o.idleTimeout }),
    );
    proxy = start(o.node, switchyardArgs(config), {
      name: `switchyard (${o.workers} workers, ${o.scheduling})`,
      cwd: repoRoot,
      env: { ...process.env, SWITCHYARD_BENCH_PROBE_DIR: probeDir },
      ipc: true,
      group: true,
    });
    const primary = /** @type {number} */ (proxy.child.pid);
    const pids = await waitReady(proxy, primary, o.workers, listen, probeDir, remaining(60_000));
    result.pids = pids;
    result.listen = listen;
    const idle = await measure(pids, probeDir, remaining(30_000));
    result.idle = idle;

    for (let i = 0; i < o.clients; i++)
      clients.push(start(process.execPath, [clientScript], { name: `load client ${i}`, ipc: true }));
    await Promise.all(clients.map((c) => waitForMessage(c, 'ready', remaining(15_000))));

    result.ramp = await ramp(o, proxy, primary, clients, listen, remaining);
    result.settle = await settle(o, clients, remaining);
    result.workersAfterRamp = childPids(primary);
    const plateau = await measure(pids, probeDir, remaining(30_000));
    result.plateau = plateau;
    result.echo = await echoAll(clients, remaining);
    result.afterEcho = await measure(pids, probeDir, remaining(30_000));
    result.final = await clientStats(clients, 10_000);
    result.proxyAlive = !proxy.ended;
    result.workersReplaced = childPids(primary).filter((p) => !pids.workers.includes(p)).length;
    return result;
  } catch (err) {
    if (proxy?.ended && err instanceof Error) {
      const { code, signal } = await proxy.exited;
      err.message += `\n${proxy.name} exited (${code ?? signal}):\n${tail(proxy.stderr || proxy.stdout)}`;
    }
    throw err;
  } finally {
    if (proxy) {
      result.proxyLog = warnings(proxy.stdout + proxy.stderr);
      await kill(proxy);
    }
    await Promise.all(clients.map(kill));
    rmSync(probeDir, { recursive: true, force: true });
    await waitForBackendsIdle(o).catch((err) => o.say(`  warning: ${err.message}`));
  }
}

/**
 * Ready when the primary and N workers have applied the probe plugin (written their file) and
 * every listener accepts a connection.
 * @param {Proc} proxy
 * @param {number} primary
 * @param {number} workers
 * @param {string[]} listen
 * @param {string} probeDir
 * @param {number} timeoutMs
 * @returns {Promise<Pids>}
 */
async function waitReady(proxy, primary, workers, listen, probeDir, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !proxy.ended) {
    const children = childPids(primary);
    const written = new Set(
      readdirSync(probeDir)
        .filter((f) => f.endsWith('.json'))
        .map((f) => Number.parseInt(f, 10)),
    );
    const ready = children.filter((p) => written.has(p));
    if (written.has(primary) && ready.length === workers && (await allAccept(listen)))
      return { primary, workers: ready };
    await sleep(200);
  }
  const why = proxy.ended ? 'exited during startup' : `not ready within ${timeoutMs} ms`;
  throw new Error(`${proxy.name}: ${why}\n${tail(proxy.stderr || proxy.stdout)}`);
}

/** @param {string[]} listen */
async function allAccept(listen) {
  const tries = listen.map((address) => {
    const { host, port } = splitAddress(address);
    return canConnect(port, host);
  });
  return (await Promise.all(tries)).every(Boolean);
}

/**
 * Every proxy process after a full GC: SIGUSR2, then its file with a newer sequence number;
 * VmRSS and descriptors from /proc.
 * @param {Pids} pids
 * @param {string} probeDir
 * @param {number} timeoutMs
 */
async function measure(pids, probeDir, timeoutMs) {
  const all = [pids.primary, ...pids.workers];
  const before = new Map(all.map((pid) => [pid, readProbe(probeDir, pid)?.seq ?? -1]));
  for (const pid of all) {
    try {
      process.kill(pid, 'SIGUSR2');
    } catch {} // gone: reported as missing below
  }
  const deadline = Date.now() + timeoutMs;
  const probes = new Map();
  while (Date.now() < deadline && probes.size < all.length) {
    for (const pid of all) {
      if (probes.has(pid)) continue;
      const p = readProbe(probeDir, pid);
      if (p && p.seq > before.get(pid)) probes.set(pid, p);
    }
    if (probes.size < all.length) await sleep(100);
  }
  const processes = all.map((pid) => {
    const p = probes.get(pid);
    return {
      pid,
      role: pid === pids.primary ? 'primary' : 'worker',
      memory: residentKiB(pid),
      fds: descriptors(pid),
      sessions: p ? p.sessions : null,
      capacity: p?.capacity ?? null,
      counters: p?.counters ?? null,
      heapUsed: p?.memory?.heapUsed ?? null,
      newSpace: p?.heapSpaces?.new_space?.physical ?? null,
    };
  });
  /** @param {(p: (typeof processes)[number]) => number | null | undefined} f */
  const sum = (f) => processes.reduce((s, p) => s + (f(p) ?? 0), 0);
  return {
    processes,
    rss: sum((p) => p.memory?.rss),
    pss: sum((p) => p.memory?.pss),
    heapUsed: sum((p) => p.heapUsed),
    newSpace: sum((p) => p.newSpace),
    sessions: sum((p) => (p.role === 'worker' ? p.sessions : 0)),
    missing: processes.filter((p) => p.sessions === null).length,
  };
}

/**
 * @param {string} dir
 * @param {number} pid
 * @returns {any} what cluster-probe-plugin.js wrote, or null
 */
function readProbe(dir, pid) {
  try {
    return JSON.parse(readFileSync(join(dir, `${pid}.json`), 'utf8'));
  } catch {
    return null;
  }
}

/**
 * @param {ClusterPhaseOptions} o
 * @param {Proc} proxy
 * @param {number} primary
 * @param {Proc[]} clients
 * @param {string[]} targets
 * @param {Remaining} remaining
 */
async function ramp(o, proxy, primary, clients, targets, remaining) {
  const perClient = split(o.target, clients.length);
  const timeoutMs = remaining(Math.ceil((o.target / o.rate) * 3000) + 30_000);
  const startedAt = Date.now();
  let printing = true;
  let primaryMaxSockets = 0;
  const printer = (async () => {
    while (printing) {
      await sleep(1000);
      if (!printing) break;
      let sum;
      let upstream;
      try {
        sum = await clientStats(clients, 2000);
        upstream = await o.backends.connections();
      } catch {
        continue;
      }
      const pfd = descriptors(primary);
      primaryMaxSockets = Math.max(primaryMaxSockets, pfd?.sockets ?? 0);
      const errors = Object.entries(sum.errors)
        .map(([k, v]) => `${k} ${fmt(v)}`)
        .join(', ');
      o.say(
        `  [${o.name}] ${((Date.now() - startedAt) / 1000).toFixed(1)}s: connected ${fmt(sum.connected)}/${fmt(o.target)}` +
          ` held ${fmt(sum.held)}, pending ${fmt(sum.pending)}, resets ${fmt(sum.resets)}, failed ${fmt(sum.failed)}` +
          `${errors ? ` (${errors})` : ''}; backend connections ${fmt(upstream)}; primary sockets ${fmt(pfd?.sockets ?? '-')}` +
          `${proxy.ended ? '; PRIMARY EXITED' : ''}`,
      );
    }
  })();
  try {
    const replies = await Promise.all(
      clients.map((c, i) =>
        request(
          c,
          {
            type: 'ramp',
            targets: rotate(targets, i),
            count: perClient[i],
            rate: o.rate / clients.length,
            maxPending: MAX_PENDING_PER_CLIENT,
            timeoutMs,
          },
          'ramped',
          timeoutMs + 15_000,
        ),
      ),
    );
    const ms = Date.now() - startedAt;
    const sum = total(replies);
    return {
      ...sum,
      ms,
      rate: Math.round((sum.started / ms) * 1000),
      timedOut: replies.some((r) => r.timedOut),
      primaryMaxSockets,
    };
  } finally {
    printing = false;
    await printer;
  }
}

/**
 * Until the clients' held connections and the backends' connections agree, unchanged for 1 s.
 * @param {ClusterPhaseOptions} o
 * @param {Proc[]} clients
 * @param {Remaining} remaining
 */
async function settle(o, clients, remaining) {
  const deadline = Date.now() + remaining(30_000);
  let last = '';
  let stableSince = Date.now();
  let view;
  while (Date.now() < deadline) {
    const stats = await clientStats(clients, 10_000);
    const upstream = await o.backends.connections();
    view = { held: stats.held, upstream, resets: stats.resets, failed: stats.failed };
    const key = JSON.stringify(view);
    if (key !== last) {
      last = key;
      stableSince = Date.now();
    } else if (Date.now() - stableSince >= 1000 && stats.held === upstream) {
      return { ...view, agreed: true, errors: stats.errors };
    }
    await sleep(250);
  }
  o.say(`  [${o.name}] warning: did not settle: ${JSON.stringify(view)}`);
  return { ...view, agreed: false };
}

/**
 * Warning and error lines of the proxy's log (pino JSON, level ≥ 40), counted by message.
 * @param {string} output
 */
function warnings(output) {
  /** @type {Record<string, number>} */
  const byMessage = {};
  let other = 0;
  for (const line of output.split('\n')) {
    if (!line.trim()) continue;
    try {
      const entry = JSON.parse(line);
      if (entry.level >= 40) byMessage[entry.msg] = (byMessage[entry.msg] ?? 0) + 1;
    } catch {
      other++;
    }
  }
  return { byMessage, otherLines: other, tail: tail(output, 5) };
}
