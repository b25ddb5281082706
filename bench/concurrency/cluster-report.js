// The printed results of the multi-process (`--workers`) phases.
import { fmt, mib } from './format.js';

/**
 * A cluster phase's result (cluster-phase.js).
 * @typedef {Record<string, any>} ClusterResult
 * @typedef {{ role: 'primary' | 'worker', pid: number, sessions: number | null,
 *   memory: { rss: number, pss: number } | null, fds: { all: number, sockets: number } | null,
 *   capacity: { limit: number | null, refused: number } | null, counters: Record<string, number> | null }} ProcessView
 */

/**
 * RSS growth over every proxy process (primary + workers) per session held, KiB.
 * @param {ClusterResult} r
 */
export function clusterPerConnection(r) {
  const n = Math.max(1, r.plateau.sessions);
  return {
    rss: (r.plateau.rss - r.idle.rss) / n,
    rssNoYoung: (r.plateau.rss - r.idle.rss - (r.plateau.newSpace - r.idle.newSpace) / 1024) / n,
    heap: (r.plateau.heapUsed - r.idle.heapUsed) / 1024 / n,
    rssTotal: r.plateau.rss / n,
    // Every process's memory, base included, with shared pages counted once (PSS).
    pssTotal: r.plateau.pss / n,
  };
}

/** @param {Record<string, number> | undefined} errors */
function errorList(errors) {
  const list = Object.entries(errors ?? {}).map(([k, v]) => `${k} ${fmt(v)}`);
  return list.length ? list.join(', ') : 'none';
}

/**
 * @param {(line: string) => void} say
 * @param {ClusterResult} r
 */
export function sayClusterPhase(say, r) {
  const per = clusterPerConnection(r);
  say(
    `  held ${fmt(r.settle.held)} (worker sessions ${fmt(r.plateau.sessions)}, backend connections ${fmt(r.settle.upstream)})` +
      `, ramp ${(r.ramp.ms / 1000).toFixed(1)} s; client errors: ${errorList(r.ramp.errors)}; echo ${fmt(r.echo.ok)} ok, ${fmt(r.echo.failed)} failed` +
      `; RSS (all ${1 + r.pids.workers.length} processes) ${mib(r.idle.rss)} → ${mib(r.plateau.rss)} MiB = ${per.rss.toFixed(2)} KiB/connection` +
      `; PSS (shared pages counted once) ${mib(r.idle.pss)} → ${mib(r.plateau.pss)} MiB = ${per.pssTotal.toFixed(2)} KiB/connection, base included`,
  );
}

/**
 * @param {(line: string) => void} say
 * @param {ClusterResult[]} results
 * @param {string} about  the Node the proxies ran on and the number of rounds, for every table
 */
export function printClusterSummary(say, results, about) {
  say(`\nConnections held by the cluster (${about})\n`);
  say(
    '| workers, scheduling, worker_semi_space | target | held (worker sessions) | client errors during ramp | ramp | echo ok / failed | RSS MiB, all processes: idle → plateau → after echo | RSS KiB/conn | without young-gen growth | JS heap KiB/conn | PSS MiB, all processes: idle → plateau | all processes per conn, base included: PSS / RSS KiB | primary sockets max during ramp |',
  );
  say('|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    const p = clusterPerConnection(r);
    say(
      `| ${r.workers}, ${r.scheduling}, ${r.semiSpace === undefined ? 'Node default' : `${r.semiSpace} MiB`} | ${fmt(r.target)} | ${fmt(r.settle.held)} (${fmt(r.plateau.sessions)}) | ` +
        `${errorList(r.ramp.errors)} (resets ${fmt(r.ramp.resets)}, failed ${fmt(r.ramp.failed)}) | ` +
        `${(r.ramp.ms / 1000).toFixed(1)} s, ${fmt(r.ramp.rate)}/s | ${fmt(r.echo.ok)} / ${fmt(r.echo.failed)} | ` +
        `${mib(r.idle.rss)} → ${mib(r.plateau.rss)} → ${mib(r.afterEcho.rss)} | ${p.rss.toFixed(2)} | ${p.rssNoYoung.toFixed(2)} | ${p.heap.toFixed(2)} | ` +
        `${mib(r.idle.pss)} → ${mib(r.plateau.pss)} | ${p.pssTotal.toFixed(2)} / ${p.rssTotal.toFixed(2)} | ${fmt(r.ramp.primaryMaxSockets)} |`,
    );
  }
  for (const r of results) {
    say(
      `\n${r.workers} workers, ${r.scheduling}: per process at the plateau, after a full GC each (${about})\n`,
    );
    say(
      '| process | pid | sessions | budget | refused | sockets (descriptors) | RSS MiB idle → plateau | PSS MiB idle → plateau |',
    );
    say('|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const p of /** @type {ProcessView[]} */ (r.plateau.processes)) {
      const idle = /** @type {ProcessView[]} */ (r.idle.processes).find((q) => q.pid === p.pid);
      say(
        `| ${p.role} | ${p.pid} | ${p.role === 'worker' ? fmt(p.sessions ?? '?') : '-'} | ${fmt(p.capacity?.limit ?? '-')} | ` +
          `${fmt(p.capacity?.refused ?? '-')} | ${fmt(p.fds?.sockets ?? '?')} (${fmt(p.fds?.all ?? '?')}) | ` +
          `${idle?.memory ? mib(idle.memory.rss) : '?'} → ${p.memory ? mib(p.memory.rss) : 'gone'} | ` +
          `${idle?.memory ? mib(idle.memory.pss) : '?'} → ${p.memory ? mib(p.memory.pss) : 'gone'} |`,
      );
    }
    const sessions = /** @type {ProcessView[]} */ (r.plateau.processes)
      .filter((p) => p.role === 'worker')
      .map((p) => p.sessions ?? 0);
    const counters = sumCounters(r.afterEcho.processes);
    say(
      `  spread over workers: min ${fmt(Math.min(...sessions))}, max ${fmt(Math.max(...sessions))}; ` +
        `worker counters: ${
          Object.entries(counters)
            .map(([k, v]) => `${k} ${fmt(v)}`)
            .join(', ') || '-'
        }; ` +
        `workers replaced during the run ${fmt(r.workersReplaced)}; probes missing ${fmt(r.plateau.missing)}; ` +
        `after echo: held ${fmt(r.final.held)}, closed by peer ${fmt(r.final.closedByPeer)}; primary ${r.proxyAlive ? 'alive' : 'DEAD'}`,
    );
    const logged = Object.entries(r.proxyLog?.byMessage ?? {});
    say(
      `  proxy warnings/errors logged: ${logged.length ? logged.map(([m, n]) => `"${m}" ×${n}`).join(', ') : 'none'}`,
    );
  }
}

/** @param {ProcessView[]} processes */
function sumCounters(processes) {
  /** @type {Record<string, number>} */
  const sum = {};
  for (const p of processes) {
    if (p.role !== 'worker') continue;
    for (const [k, v] of Object.entries(p.counters ?? {})) sum[k] = (sum[k] ?? 0) + v;
  }
  return sum;
}
