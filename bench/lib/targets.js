// What the workloads are aimed at: the backend itself, or a proxy in front of it running as its
// own process, started the way its users start it.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { freePort, waitForPort } from './ports.js';
import { processTree } from './proc-stats.js';
import { start, stop, tail, waitForOutput } from './procs.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));

/**
 * A running target. `pid` is the process whose CPU time is charged to the proxy (null for direct).
 * @typedef {{ port: number, pid: number | null, stop(graceMs?: number): Promise<void> }} RunningTarget
 *
 * @typedef {object} Target
 * @property {string} name
 * @property {string} label
 * @property {(backendPort: number, dir: string, options?: StartOptions) => Promise<RunningTarget>} start
 *
 * @typedef {object} StartOptions
 * @property {string} [node]      the Node binary of the Node targets (default: this process's)
 * @property {string} [cpuProf]   directory for `node --cpu-prof` (Node targets)
 * @property {number} [workers]   Switchyard's `workers` and HAProxy's `nbthread` (default 1);
 *                                the Node naive proxy stays one process
 * @property {'auto' | 'reuseport' | 'rr' | 'none'} [scheduling]  Switchyard's `scheduling` when
 *                                workers > 1 (default auto: reuseport where the Node supports it)
 */

/** @type {Target} */
export const direct = {
  name: 'direct',
  label: 'direct (no proxy)',
  start: async (backendPort) => ({ port: backendPort, pid: null, stop: async () => {} }),
};

/** @type {Target} */
export const switchyard = switchyardTarget('switchyard', 'Switchyard', []);

/**
 * Switchyard with Node's own young generation in its workers (`worker_semi_space: 0`) instead
 * of the 2 MiB default: not run by default; `--workers 2 --targets switchyard,switchyard-semi0`
 * measures what the smaller default costs in throughput. The same as `switchyard` with one
 * process (the setting only applies to workers).
 * @type {Target}
 */
export const switchyardSemi0 = switchyardTarget('switchyard-semi0', 'Switchyard, worker_semi_space: 0', [
  'worker_semi_space: 0',
]);

/**
 * @param {string} name
 * @param {string} label
 * @param {string[]} extra  top-level config lines added to the generated file
 * @returns {Target}
 */
function switchyardTarget(name, label, extra) {
  return {
    name,
    label,
    async start(backendPort, dir, options = {}) {
      return retryPorts(async (port) => {
        const file = join(dir, `${name}-${port}.yaml`);
        const workers = options.workers ?? 1;
        writeFileSync(
          file,
          [
            ...(workers > 1 ? [`workers: ${workers}`, `scheduling: ${options.scheduling ?? 'auto'}`] : []),
            ...extra,
            `listen: 127.0.0.1:${port}`,
            'backends:',
            `  - address: 127.0.0.1:${backendPort}`,
            'log_level: warn',
            'plugins:',
            '  round-robin: {}',
            '',
          ].join('\n'),
        );
        const proc = startNode(options, ['bin/switchyard.js', '--config', file], repo);
        return {
          proc,
          ready: async () => {
            await waitForPort(port, proc);
            if (workers > 1) await waitForChildren(proc, workers);
          },
        };
      });
    },
  };
}

/**
 * A Node target's process: on `options.node`, under `--cpu-prof` when profiling.
 * @param {StartOptions} options
 * @param {string[]} args
 * @param {string} [cwd]
 */
function startNode(options, args, cwd) {
  const profile = options.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', options.cpuProf] : [];
  return start(options.node ?? process.execPath, [...profile, ...args], { cwd });
}

/**
 * The port answers as soon as one worker listens; wait for all of them, so round 1 does not
 * measure a cluster still starting.
 * @param {import('./procs.js').Proc} proc
 * @param {number} count
 */
async function waitForChildren(proc, count, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  while (processTree(proc.child.pid).length < count + 1) {
    if (proc.ended) throw new Error(`${proc.name} exited during startup\n${tail(proc.stderr)}`);
    if (Date.now() > deadline) throw new Error(`fewer than ${count} workers after ${timeoutMs} ms`);
    await sleep(50);
  }
  // A forked worker still applies its plugins and opens its listener.
  await sleep(1000);
}

/** @type {Target} */
export const naive = naiveProxy('naive', 'naive Node pipe', false);

/**
 * The naive proxy with TCP_NODELAY on both sockets, as Switchyard sets it: not run by default;
 * `--targets switchyard,naive,naive-nodelay` separates the cost of Nagle being off from the
 * cost of Switchyard's own code.
 * @type {Target}
 */
export const naiveNoDelay = naiveProxy('naive-nodelay', 'naive + TCP_NODELAY', true);

/**
 * With `--workers N`: N naive proxies on one port with SO_REUSEPORT (naive-reuseport.js), what
 * Node does with N processes and no code of ours in the data path; one naive proxy otherwise.
 * Not run by default. Needs the proxies' Node >= 22.12.
 * @type {Target}
 */
export const naiveReuseport = {
  name: 'naive-reuseport',
  label: 'naive Node pipe, reuseport',
  start: (backendPort, _dir, options = {}) =>
    startScript(options, 'naive-reuseport.js', { processes: options.workers ?? 1, backends: [backendPort] }),
};

/**
 * A Node script of this folder that prints "listening <host>:<port>" once it proxies.
 * @param {StartOptions} options
 * @param {string} file
 * @param {object} spec  its JSON argument
 * @returns {Promise<RunningTarget>}
 */
async function startScript(options, file, spec) {
  const script = fileURLToPath(new URL(file, import.meta.url));
  const proc = startNode(options, [script, JSON.stringify(spec)]);
  try {
    const port = Number((await waitForOutput(proc, /listening [^\s]+:(\d+)/))[1]);
    return { port, pid: proc.child.pid ?? null, stop: (graceMs) => stop(proc, graceMs) };
  } catch (err) {
    await stop(proc);
    throw err;
  }
}

/**
 * @param {string} name
 * @param {string} label
 * @param {boolean} noDelay
 * @returns {Target}
 */
function naiveProxy(name, label, noDelay) {
  return {
    name,
    label,
    start: (backendPort, _dir, options = {}) =>
      startScript(options, 'naive-proxy.js', { listen: ['127.0.0.1'], backends: [backendPort], noDelay }),
  };
}

/** @type {Target} */
export const haproxy = {
  name: 'haproxy',
  label: 'HAProxy',
  async start(backendPort, dir, options = {}) {
    return retryPorts(async (port) => {
      const file = join(dir, `haproxy-${port}.cfg`);
      writeFileSync(file, haproxyConfig(port, backendPort, options.workers ?? 1));
      // -db: foreground, no daemon, no master process: the pid we hold is the one that proxies.
      const proc = start('haproxy', ['-db', '-f', file]);
      return { proc, ready: () => waitForPort(port, proc) };
    });
  },
};

/**
 * One thread (or `threads`, for the multi-process comparison), kernel splicing where it pays off, timeouts like a production TCP config.
 * maxconn as high as the fd limit allows: HAProxy refuses to start if it cannot raise it, and
 * needs 2 fds per connection plus 2 per splice pipe (maxpipes defaults to maxconn / 4).
 * @param {number} port
 * @param {number} backendPort
 */
export function haproxyConfig(port, backendPort, threads = 1) {
  const maxconn = Math.min(50000, Math.floor((hardFdLimit() - 500) / 2.5));
  return `global
  nbthread ${threads}
  maxconn ${maxconn}
  log stderr format raw local0 warning

defaults
  mode tcp
  log global
  option splice-auto
  timeout connect 5s
  timeout client 1h
  timeout server 1h
  timeout client-fin 30s
  timeout server-fin 30s
  maxconn ${maxconn}

frontend bench
  bind 127.0.0.1:${port}
  default_backend upstream

backend upstream
  server s1 127.0.0.1:${backendPort}
`;
}

/** The hard RLIMIT_NOFILE of this process (its children inherit it). */
function hardFdLimit() {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const hard = line?.trim().split(/\s+/)[4];
    return hard === undefined || hard === 'unlimited' ? 100_000 : Number(hard);
  } catch {
    return 20_000;
  }
}

/**
 * Binds a proxy on a free port, trying another if someone took it in between.
 * @param {(port: number) => Promise<{ proc: import('./procs.js').Proc, ready: () => Promise<void> }>} launch
 * @returns {Promise<RunningTarget>}
 */
async function retryPorts(launch) {
  let lastError;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const { proc, ready } = await launch(port);
    try {
      await ready();
      return { port, pid: proc.child.pid ?? null, stop: (graceMs) => stop(proc, graceMs) };
    } catch (err) {
      lastError = err;
      await stop(proc);
    }
  }
  throw lastError;
}

export const allTargets = [direct, switchyard, naive, haproxy, naiveNoDelay, switchyardSemi0, naiveReuseport];

/** What runs when `--targets` is not given. */
export const defaultTargets = [direct, switchyard, naive, haproxy];
