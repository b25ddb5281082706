// One phase of the concurrency benchmark: start a proxy, ramp load clients up to a target number
// of held connections, let it settle, measure the proxy's memory, echo one byte through every
// held connection, then tear everything of the phase down. Every wait is bounded by its own
// timeout and by the run's deadline.
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { request, waitForMessage } from '../lib/ipc.js';
import { residentKiB } from '../lib/proc-stats.js';
import { kill, start, tail } from '../lib/procs.js';
import { fmt } from './format.js';
import {
  clientStats,
  ECHO_WINDOW_PER_CLIENT,
  echoAll,
  remainingUntil,
  rotate,
  split,
  total,
  waitForBackendsIdle,
} from './phase-steps.js';
import { probe, startNaive, startSwitchyard } from './proxies.js';

const clientScript = fileURLToPath(new URL('load-client.js', import.meta.url));
/** Connections a client may have in the middle of a handshake: keeps a ramp from bursting. */
const MAX_PENDING_PER_CLIENT = 200;
/** Connections closed and reopened to check a full proxy takes new ones again. */
const RECOVER_COUNT = 100;

/**
 * @typedef {object} PhaseOptions
 * @property {string} name
 * @property {'switchyard' | 'naive'} kind
 * @property {number} target connections to open
 * @property {number} clients load-client processes
 * @property {number} rate new connections per second, all clients together
 * @property {string} node the Node binary the proxy runs on
 * @property {string[]} hosts listener addresses (all loopback)
 * @property {import('./backends.js').Backends} backends
 * @property {string} dir scratch directory
 * @property {string | undefined} idleTimeout Switchyard idle_timeout (core default when undefined)
 * @property {boolean} recover after the plateau, close some connections and open new ones
 * @property {number} deadline epoch ms by which the whole run must end
 * @property {(line: string) => void} say
 */

/**
 * @param {PhaseOptions} o
 * @returns {Promise<Record<string, any>>} what report.js prints
 */
export async function runPhase(o) {
  const remaining = remainingUntil(o.name, o.deadline);
  /** @type {Record<string, any>} */
  const result = { name: o.name, kind: o.kind, target: o.target };
  /** @type {import('./proxies.js').Proxy | undefined} */
  let proxy;
  /** @type {Proc[]} */
  const clients = [];
  try {
    const how = {
      node: o.node,
      hosts: o.hosts,
      backendPorts: o.backends.ports,
      timeoutMs: remaining(30_000),
    };
    proxy =
      o.kind === 'switchyard'
        ? await startSwitchyard({ ...how, dir: o.dir, idleTimeout: o.idleTimeout })
        : await startNaive(how);
    const pid = /** @type {number} */ (proxy.proc.child.pid);
    const before = await measure(proxy, pid);
    result.limit = before.capacity?.limit ?? null;
    result.before = before.memory;

    for (let i = 0; i < o.clients; i++)
      clients.push(start(process.execPath, [clientScript], { name: `load client ${i}`, ipc: true }));
    await Promise.all(clients.map((c) => waitForMessage(c, 'ready', remaining(15_000))));

    // Two steps, measured after each: the growth between them is the marginal cost of a
    // connection, free of one-off growth (V8's young generation, pools) that the first step absorbs.
    const half = Math.floor(o.target / 2);
    const first = await ramp(o, proxy, clients, half, 'to half', remaining);
    const mid = await settle(o, proxy, clients, remaining);
    const halfway = await measure(proxy, pid);
    result.half = halfway.memory;
    result.halfSessions = halfway.active;
    result.halfSettle = mid;
    const second = await ramp(o, proxy, clients, o.target - half, 'to target', remaining);
    result.ramp = { ...second, ms: first.ms + second.ms, timedOut: first.timedOut || second.timedOut };
    result.ramp.rate = Math.round((second.started / result.ramp.ms) * 1000);
    result.settle = await settle(o, proxy, clients, remaining);
    const plateau = await measure(proxy, pid);
    result.plateau = plateau.memory;
    result.sessions = plateau.active;
    result.counters = plateau.counters ?? null;
    result.capacity = plateau.capacity ?? null;

    result.echo = await echoAll(clients, remaining);
    const after = await measure(proxy, pid);
    result.afterEcho = after.memory;
    if (o.recover) result.recover = await recover(o, proxy, clients, remaining);
    const last = await probe(proxy, { timeoutMs: remaining(10_000) });
    result.finalCounters = last.counters ?? null;
    result.finalCapacity = last.capacity ?? null;
    result.proxyAlive = !proxy.proc.ended;
    return result;
  } catch (err) {
    if (proxy?.proc.ended && err instanceof Error) {
      const { code, signal } = await proxy.proc.exited;
      err.message += `\n${proxy.proc.name} exited (${code ?? signal}):\n${tail(proxy.proc.stderr || proxy.proc.stdout)}`;
    }
    throw err;
  } finally {
    if (proxy) {
      result.proxyLog = tail(proxy.proc.stdout + proxy.proc.stderr, 5);
      result.limitLog = limitLogLines(proxy.proc.stdout);
      await kill(proxy.proc);
    }
    await Promise.all(clients.map(kill));
    await waitForBackendsIdle(o).catch((err) => o.say(`  warning: ${err.message}`));
  }
}

/**
 * @typedef {import('./phase-steps.js').Proc} Proc
 * @typedef {import('./phase-steps.js').Remaining} Remaining
 * @typedef {import('./proxies.js').Proxy} Proxy
 */

/**
 * Memory of the proxy after a full GC: the kernel's view (VmRSS) and V8's.
 * @param {Proxy} proxy
 * @param {number} pid
 */
async function measure(proxy, pid) {
  const p = await probe(proxy, { gc: true, timeoutMs: 30_000 });
  return { ...p, memory: { ...residentKiB(pid), v8: p.memory, spaces: p.heapSpaces } };
}

/**
 * Opens `count` more connections, spread over the clients; totals in the reply are cumulative.
 * @param {PhaseOptions} o
 * @param {Proxy} proxy
 * @param {Proc[]} clients
 * @param {number} count
 * @param {string} step
 * @param {Remaining} remaining
 */
async function ramp(o, proxy, clients, count, step, remaining) {
  const targets = proxy.addresses;
  const perClient = split(count, clients.length);
  const timeoutMs = remaining(Math.ceil((count / o.rate) * 4000) + 30_000);
  const startedAt = Date.now();
  let printing = true;
  const printer = (async () => {
    while (printing) {
      await sleep(1000);
      if (!printing) break;
      let sum;
      let sessions = '?';
      try {
        sum = await clientStats(clients, 2000);
        sessions = fmt((await probe(proxy, { timeoutMs: 2000 })).active);
      } catch {
        continue; // busy: skip this line
      }
      o.say(
        `  [${o.name}, ${step}] ${((Date.now() - startedAt) / 1000).toFixed(1)}s: connected ${fmt(sum.connected)}/${fmt(o.target)}` +
          ` held ${fmt(sum.held)}, resets ${fmt(sum.resets)}, failed ${fmt(sum.failed)}; proxy sessions ${sessions}`,
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
            // Each client starts on another listener so the addresses fill evenly.
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
    return { ...total(replies), ms: Date.now() - startedAt, timedOut: replies.some((r) => r.timedOut) };
  } finally {
    printing = false;
    await printer;
  }
}

/**
 * Waits until the clients' held connections, the proxy's sessions and the backends' connections
 * agree and have not changed for a second: every held connection is proxied end to end.
 * @param {PhaseOptions} o
 * @param {Proxy} proxy
 * @param {Proc[]} clients
 * @param {Remaining} remaining
 */
async function settle(o, proxy, clients, remaining) {
  const deadline = Date.now() + remaining(30_000);
  let last = '';
  let stableSince = Date.now();
  let view;
  while (Date.now() < deadline) {
    const stats = await clientStats(clients, 10_000);
    const sessions = (await probe(proxy)).active;
    const upstream = await o.backends.connections();
    view = { held: stats.held, sessions, upstream, resets: stats.resets, failed: stats.failed };
    const key = JSON.stringify(view);
    if (key !== last) {
      last = key;
      stableSince = Date.now();
    } else if (Date.now() - stableSince >= 1000 && stats.held === sessions && sessions === upstream) {
      return { ...view, agreed: true, errors: stats.errors };
    }
    await sleep(250);
  }
  o.say(`  [${o.name}] warning: did not settle: ${JSON.stringify(view)}`);
  return { ...view, agreed: false };
}

/**
 * A full proxy must take new connections again as soon as sessions end: close some held ones,
 * open as many new ones, and echo through every held connection of that client.
 * @param {PhaseOptions} o
 * @param {Proxy} proxy
 * @param {Proc[]} clients
 * @param {Remaining} remaining
 */
async function recover(o, proxy, clients, remaining) {
  const client = clients[0];
  const before = await request(client, { type: 'stats' }, 'stats', 10_000);
  await request(client, { type: 'drop', count: RECOVER_COUNT }, 'dropped', 10_000);
  const deadline = Date.now() + remaining(20_000);
  let stats = before;
  while (Date.now() < deadline) {
    stats = await request(client, { type: 'stats' }, 'stats', 10_000);
    if (stats.held <= before.held - RECOVER_COUNT) break;
    await sleep(100);
  }
  const freed = before.held - stats.held;
  const timeoutMs = remaining(20_000);
  const ramped = await request(
    client,
    {
      type: 'ramp',
      targets: proxy.addresses,
      count: RECOVER_COUNT,
      rate: 500,
      maxPending: 50,
      timeoutMs,
    },
    'ramped',
    timeoutMs + 10_000,
  );
  const settled = await settle(o, proxy, clients, remaining);
  const echo = await request(
    client,
    { type: 'echo', window: ECHO_WINDOW_PER_CLIENT, timeoutMs: remaining(30_000) },
    'echoed',
    remaining(45_000),
  );
  return {
    closed: freed,
    opened: ramped.connected - stats.connected,
    resets: ramped.resets - stats.resets,
    sessions: settled.sessions,
    echoOk: echo.ok,
    echoFailed: echo.failed,
  };
}

/**
 * The core's 'session limit reached' warnings (at most one per 10 s): how many, and the refusal
 * count the last one reported.
 * @param {string} stdout
 */
function limitLogLines(stdout) {
  const lines = stdout.split('\n').filter((l) => l.includes('session limit reached'));
  let refusedSoFar = null;
  try {
    if (lines.length > 0) refusedSoFar = JSON.parse(lines[lines.length - 1]).refusedSoFar ?? null;
  } catch {}
  return { lines: lines.length, refusedSoFar };
}
