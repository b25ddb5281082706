#!/usr/bin/env node
// Concurrency benchmark: how many idle proxied connections one Switchyard process holds, what
// each costs in memory next to a naive Node proxy, and whether a full proxy refuses the excess
// cleanly. `npm run build` first. See bench/concurrency/README.md.
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { withCleanup } from '../lib/cleanup.js';
import { nodeBinary } from '../lib/node-binary.js';
import { startBackends } from './backends.js';
import { runClusterPhase } from './cluster-phase.js';
import { printClusterSummary, sayClusterPhase } from './cluster-report.js';
import { fmt, mib } from './format.js';
import { runPhase } from './phase.js';
import { perConnection, printSummary } from './report.js';

const USAGE = `usage: node bench/concurrency/run.js [options]
  --target <n>         connections held by each proxy (default 9500)
  --over-limit         also aim --over-target connections at Switchyard: the excess must be refused
  --over-target <n>    (default 10500; the session budget here is 9,900)
  --no-naive           skip the naive Node proxy
  --rate <n>           new connections per second, all load clients together (default 1500)
  --clients <n>        load-client processes (default: one per 3,500 connections, at least 2)
  --backends <n>       echo backend processes (default 3)
  --listeners <n>      listener addresses per proxy, 127.0.0.1 .. 127.0.0.<n> (default 4)
  --idle-timeout <d>   Switchyard idle_timeout (default: the core's, 1h)
  --budget <s>         the whole run ends within this many seconds (default 280)
  --json <file>        also write the results as JSON
  --workers <n>        multi-process mode: Switchyard with \`workers: n\` (primary + n workers) instead
                       of one process; no naive proxy, no --over-limit. Defaults then: one client
                       and one backend per 8,000 connections (at least 2)
  --scheduling <list>  with --workers: auto, reuseport, rr, none, or a list (one phase each; default auto)
  --semi-space <n>     with --workers: the config's worker_semi_space in MiB (default 2; "node"
                       leaves Node's default, up to 16 MiB per worker)
  --node <path>        the Node binary to run the proxies with (default: the one running this
                       script; load clients and echo backends always run on this one)`;

/** @typedef {ReturnType<typeof options>} Options */

function options() {
  const { values } = parseArgs({
    options: {
      target: { type: 'string', default: '9500' },
      'over-limit': { type: 'boolean', default: false },
      'over-target': { type: 'string', default: '10500' },
      'no-naive': { type: 'boolean', default: false },
      rate: { type: 'string', default: '1500' },
      clients: { type: 'string' },
      backends: { type: 'string' },
      listeners: { type: 'string', default: '4' },
      'idle-timeout': { type: 'string' },
      budget: { type: 'string', default: '280' },
      json: { type: 'string' },
      workers: { type: 'string' },
      scheduling: { type: 'string', default: 'auto' },
      'semi-space': { type: 'string', default: '2' },
      node: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  /**
   * @param {'target' | 'over-target' | 'workers' | 'semi-space' | 'rate' | 'clients' | 'backends' | 'listeners' | 'budget'} name
   * @param {number} min
   * @param {number} max
   */
  const int = (name, min, max) => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < min || n > max) {
      console.error(`--${name} must be an integer in ${min}..${max}\n${USAGE}`);
      process.exit(2);
    }
    return n;
  };
  const target = int('target', 1, 60_000);
  const overTarget = int('over-target', 1, 60_000);
  const most = values['over-limit'] ? Math.max(target, overTarget) : target;
  const workers = values.workers === undefined ? undefined : int('workers', 2, 64);
  const scheduling = values.scheduling.split(',');
  if (scheduling.some((s) => !['auto', 'reuseport', 'rr', 'none'].includes(s))) {
    console.error(`--scheduling must be auto, reuseport, rr, none or a list of them\n${USAGE}`);
    process.exit(2);
  }
  let node;
  try {
    node = nodeBinary(values.node);
  } catch (err) {
    console.error(/** @type {Error} */ (err).message);
    process.exit(2);
  }
  if (workers !== undefined) {
    if (values['over-limit']) {
      console.error('--over-limit is not supported with --workers');
      process.exit(2);
    }
    // Each client and each backend stays under ~8,000 sockets, far below its open files limit.
    const perProcess = Math.max(2, Math.ceil(target / 8000));
    return {
      node,
      target,
      overTarget,
      workers,
      scheduling,
      semiSpace: values['semi-space'] === 'node' ? undefined : int('semi-space', 1, 256),
      overLimit: false,
      naive: false,
      rate: int('rate', 10, 20_000),
      clients: values.clients === undefined ? perProcess : int('clients', 1, 32),
      backends: values.backends === undefined ? perProcess : int('backends', 1, 16),
      listeners: int('listeners', 1, 16),
      idleTimeout: values['idle-timeout'],
      budgetMs: int('budget', 30, 3600) * 1000,
      json: values.json,
    };
  }
  values.backends ??= '3';
  return {
    node,
    workers,
    scheduling,
    semiSpace: undefined,
    target,
    overLimit: values['over-limit'],
    overTarget,
    naive: !values['no-naive'],
    rate: int('rate', 10, 20_000),
    // A client holds at most ~3,500 sockets: far below its own open files limit.
    clients: values.clients === undefined ? Math.max(2, Math.ceil(most / 3500)) : int('clients', 1, 32),
    backends: int('backends', 1, 16),
    listeners: int('listeners', 1, 16),
    idleTimeout: values['idle-timeout'],
    budgetMs: int('budget', 30, 3600) * 1000,
    json: values.json,
  };
}

async function main() {
  const o = options();
  const deadline = Date.now() + o.budgetMs;
  const say = (/** @type {string} */ line) => console.log(line);
  const hosts = Array.from({ length: o.listeners }, (_, i) => `127.0.0.${i + 1}`);
  const machine = {
    cores: os.availableParallelism(),
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    /** The proxies' Node (`--node`); clients and backends run on the runner's. */
    node: o.node.version,
    nodePath: o.node.path,
    runnerNode: process.version,
    loadAverageAtStart: os.loadavg().map((l) => Number(l.toFixed(2))),
  };
  // Every table says it: the phases are not repeated, so there is one round.
  const about = `proxies on Node ${o.node.version}, 1 round: each phase runs once`;
  say(
    `concurrency benchmark: proxies on Node ${o.node.version} (${o.node.path}), ${o.clients} load clients, ` +
      `${o.backends} echo backends, listeners on ${hosts.join(', ')}, ` +
      `ramp ${fmt(o.rate)} conn/s; load average ${machine.loadAverageAtStart.join(' ')}`,
  );
  if (o.workers !== undefined) return clusterMain(o, o.workers, deadline, say, hosts, machine, about);
  /** @type {{ name: string, kind: 'switchyard' | 'naive', target: number, recover: boolean }[]} */
  const phases = [{ name: 'switchyard', kind: 'switchyard', target: o.target, recover: false }];
  if (o.naive) phases.push({ name: 'naive', kind: 'naive', target: o.target, recover: false });
  if (o.overLimit)
    phases.push({ name: 'switchyard over limit', kind: 'switchyard', target: o.overTarget, recover: true });

  /** @type {import('./report.js').PhaseResult[]} */
  const results = [];
  /** @type {Error | undefined} */
  let failure;
  await withCleanup(async (dir) => {
    const backends = await startBackends(o.backends, 15_000);
    for (const phase of phases) {
      say(`\n${phase.name}: ${fmt(phase.target)} connections`);
      try {
        const result = await runPhase({
          ...phase,
          node: o.node.path,
          clients: o.clients,
          rate: o.rate,
          hosts,
          backends,
          dir,
          idleTimeout: o.idleTimeout,
          deadline,
          say,
        });
        results.push(result);
        sayPhase(say, result);
      } catch (err) {
        // Report what was measured so far; later phases would only meet the same trouble.
        failure = /** @type {Error} */ (err);
        say(`  ${phase.name} failed: ${failure.message}`);
        break;
      }
    }
  });
  if (results.length > 0) printSummary(say, results, about);
  if (o.json) {
    writeFileSync(
      o.json,
      `${JSON.stringify({ machine, options: o, results, failure: /** @type {Error | undefined} */ (failure)?.message }, null, 2)}\n`,
    );
    say(`\nresults written to ${o.json}`);
  }
  if (failure) {
    process.exitCode = 1;
    return;
  }
  const bad = results.filter((r) => r.echo.failed > 0 || r.settle.agreed === false || r.proxyAlive === false);
  if (bad.length > 0) process.exitCode = 1;
}

/**
 * --workers: one phase per scheduling policy, each a fresh cluster over the same backends.
 * @param {Options} o
 * @param {number} workers
 * @param {number} deadline
 * @param {(line: string) => void} say
 * @param {string[]} hosts
 * @param {object} machine
 * @param {string} about
 */
async function clusterMain(o, workers, deadline, say, hosts, machine, about) {
  /** @type {import('./cluster-report.js').ClusterResult[]} */
  const results = [];
  /** @type {{ scheduling: string, message: string }[]} */
  const failures = [];
  await withCleanup(async (dir) => {
    const backends = await startBackends(o.backends, 15_000);
    for (const scheduling of o.scheduling) {
      const name = `switchyard workers ${workers} ${scheduling}`;
      say(`\n${name}: ${fmt(o.target)} connections`);
      try {
        const result = await runClusterPhase({
          name,
          node: o.node.path,
          workers,
          scheduling: /** @type {'rr' | 'none'} */ (scheduling),
          semiSpace: o.semiSpace,
          target: o.target,
          clients: o.clients,
          rate: o.rate,
          hosts,
          backends,
          dir,
          idleTimeout: o.idleTimeout,
          deadline,
          say,
        });
        results.push(result);
        sayClusterPhase(say, result);
      } catch (err) {
        // The other policy is worth trying even when one fails.
        const { message } = /** @type {Error} */ (err);
        failures.push({ scheduling, message });
        say(`  ${name} failed: ${message}`);
      }
    }
  });
  if (results.length > 0) printClusterSummary(say, results, about);
  if (o.json) {
    writeFileSync(o.json, `${JSON.stringify({ machine, options: o, results, failures }, null, 2)}\n`);
    say(`\nresults written to ${o.json}`);
  }
  const bad = results.filter(
    (r) => r.echo.failed > 0 || !r.settle.agreed || !r.proxyAlive || r.ramp.resets + r.ramp.failed > 0,
  );
  if (failures.length > 0 || bad.length > 0) process.exitCode = 1;
}

/**
 * @param {(line: string) => void} say
 * @param {import('./report.js').PhaseResult} r
 */
function sayPhase(say, r) {
  const per = perConnection(r);
  say(
    `  held ${fmt(r.settle.held)} (proxy sessions ${fmt(r.sessions)}, backend connections ${fmt(r.settle.upstream)})` +
      `, ramp ${(r.ramp.ms / 1000).toFixed(1)} s; echo ${fmt(r.echo.ok)} ok, ${fmt(r.echo.failed)} failed` +
      `; RSS ${mib(r.before.rss)} → ${mib(r.plateau.rss)} MiB = ${per.rss.toFixed(2)} KiB/connection` +
      ` (${per.rssNoYoung.toFixed(2)} without young-gen growth)`,
  );
}

main().catch((err) => {
  console.error(`\nconcurrency benchmark failed: ${err instanceof Error ? err.stack : err}`);
  process.exit(1);
});
