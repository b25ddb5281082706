// `node bench/scheduling.js`: connection churn (a new connection per request) through
// Switchyard as one process and as `workers: N` with each scheduling mode, against HAProxy with
// one thread and with `nbthread N`, side by side in one run. See docs/benchmarks.md.
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command } from 'commander';
import { startRedis } from './lib/backends.js';
import { withCleanup } from './lib/cleanup.js';
import { describeMachine } from './lib/machine.js';
import { NODE_OPTION_HELP, nodeBinary } from './lib/node-binary.js';
import { positiveInt } from './lib/options.js';
import { treeCpuDelta, treeCpuTimes } from './lib/proc-stats.js';
import { which } from './lib/procs.js';
import { median, ratio, spread } from './lib/stats.js';
import { haproxy, switchyard } from './lib/targets.js';
import { churn } from './lib/workloads.js';

const opts = new Command()
  .name('bench/scheduling.js')
  .description(
    'Connection churn: Switchyard one process, workers with rr, reuseport and none, HAProxy 1 and N threads (loopback only).',
  )
  .option('-r, --rounds <n>', 'rounds; each runs every target once, in a rotated order', positiveInt, 5)
  .option('-w, --workers <n>', "Switchyard's `workers` and HAProxy's `nbthread`", positiveInt, 2)
  .option('-q, --quick', 'shorter runs (10,000 connections instead of 30,000)')
  .option('--none', 'also run `scheduling: none` (node:cluster SCHED_NONE)')
  .option('--budget <minutes>', 'stop starting new runs after this many minutes', positiveInt, 8)
  .option('--node <path>', NODE_OPTION_HELP)
  .parse()
  .opts();

const node = nodeBinary(opts.node);
const quick = Boolean(opts.quick);
const n = opts.workers;
const log = (/** @type {string} */ text) => process.stderr.write(`${text}\n`);

/**
 * @typedef {{ name: string, label: string, target: import('./lib/targets.js').Target,
 *   options: import('./lib/targets.js').StartOptions }} Variant
 */
/** @type {Variant[]} */
const variants = [
  { name: 'one', label: 'Switchyard, one process', target: switchyard, options: { workers: 1 } },
  {
    name: 'rr',
    label: `Switchyard, ${n} workers, rr`,
    target: switchyard,
    options: { workers: n, scheduling: 'rr' },
  },
  {
    name: 'reuseport',
    label: `Switchyard, ${n} workers, reuseport`,
    target: switchyard,
    options: { workers: n, scheduling: 'reuseport' },
  },
  ...(opts.none
    ? [
        /** @type {Variant} */ ({
          name: 'none',
          label: `Switchyard, ${n} workers, none`,
          target: switchyard,
          options: { workers: n, scheduling: 'none' },
        }),
      ]
    : []),
  { name: 'haproxy1', label: 'HAProxy, nbthread 1', target: haproxy, options: { workers: 1 } },
  { name: 'haproxyN', label: `HAProxy, nbthread ${n}`, target: haproxy, options: { workers: n } },
];

const haproxyInstalled = await which('haproxy');
const machine = await describeMachine(haproxyInstalled, node);
const startedAt = Date.now();
const deadline = startedAt + opts.budget * 60_000;
/** @type {Map<string, { values: number[], cpu: number[], errors: string[], skipped?: string }>} */
const cells = new Map(variants.map((v) => [v.name, { values: [], cpu: [], errors: [] }]));

await withCleanup(async (dir) => {
  const backend = await startRedis();
  /** @type {Map<string, import('./lib/targets.js').RunningTarget>} */
  const running = new Map();
  try {
    for (const v of variants) {
      const cell = /** @type {NonNullable<ReturnType<typeof cells.get>>} */ (cells.get(v.name));
      if (v.target === haproxy && !haproxyInstalled) {
        cell.skipped = 'haproxy is not installed';
        continue;
      }
      try {
        running.set(v.name, await v.target.start(backend.port, dir, { ...v.options, node: node.path }));
      } catch (err) {
        // e.g. scheduling: reuseport on a Node without it: the proxy exits saying so.
        cell.skipped = /** @type {Error} */ (err).message.split('\n')[0] ?? 'failed to start';
        log(`  ${v.name}: ${cell.skipped}`);
        continue;
      }
      try {
        await churn.warmup(
          /** @type {import('./lib/targets.js').RunningTarget} */ (running.get(v.name)).port,
        );
      } catch (err) {
        cell.errors.push(`warm-up: ${/** @type {Error} */ (err).message.split('\n')[0]}`);
        log(`  ${v.name}: warm-up failed: ${cell.errors.at(-1)}`);
      }
    }
    const names = [...running.keys()];
    for (let round = 0; round < opts.rounds; round++) {
      const order = names.map((_, i) => names[(i + round) % names.length]);
      for (const name of order) {
        if (Date.now() > deadline) break;
        const t = /** @type {import('./lib/targets.js').RunningTarget} */ (running.get(name));
        const cell = /** @type {NonNullable<ReturnType<typeof cells.get>>} */ (cells.get(name));
        const before = treeCpuTimes(t.pid);
        try {
          const result = await churn.run(t.port, quick);
          const after = treeCpuTimes(t.pid);
          cell.values.push(result.value);
          const d = before === null || after === null ? null : treeCpuDelta(before, after);
          if (d !== null) cell.cpu.push(((d.user + d.system) / result.work) * 1e6);
          log(`  round ${round + 1} ${name.padEnd(10)} ${result.value.toFixed(0)} conn/s`);
        } catch (err) {
          cell.errors.push(/** @type {Error} */ (err).message.split('\n')[0] ?? 'failed');
          log(`  round ${round + 1} ${name}: FAILED: ${cell.errors.at(-1)}`);
        }
        await sleep(300); // let the previous run's sockets close
      }
    }
  } finally {
    await Promise.all([...running.values()].map((t) => t.stop()));
    await backend.stop();
  }
});

const haproxyN = median(cells.get('haproxyN')?.values ?? []);
const one = median(cells.get('one')?.values ?? []);
const fmt = (/** @type {number | null} */ v, digits = 0) =>
  v === null
    ? '–'
    : v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const lines = [
  `## Connection churn by scheduling, ${new Date(startedAt).toISOString()}`,
  '',
  `${machine.cores} × ${machine.cpu}, ${machine.kernel}, proxies on Node ${machine.node}, HAProxy ${machine.haproxy ?? 'n/a'}, ` +
    `redis ${machine.redis}; load average ${machine.loadAverageAtStart.join(' ')} at start, ` +
    `${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} at end; ${Math.round((Date.now() - startedAt) / 1000)} s.`,
  `Workload: ${churn.describe(quick)}; ${opts.rounds} rounds, target order rotated each round; medians.`,
  '',
  `| target | conn/s (median) | spread | rounds | proxy CPU µs/conn | vs one process | vs HAProxy nbthread ${n} |`,
  '|---|---:|---:|---:|---:|---:|---:|',
];
for (const v of variants) {
  const cell = /** @type {NonNullable<ReturnType<typeof cells.get>>} */ (cells.get(v.name));
  if (cell.skipped !== undefined) {
    lines.push(`| ${v.label} | skipped: ${cell.skipped} | | | | | |`);
    continue;
  }
  const m = median(cell.values);
  const s = spread(cell.values);
  lines.push(
    `| ${v.label} | ${fmt(m)} | ${s === null ? '–' : `${Math.round(s * 100)}%`} | ${cell.values.length}` +
      `${cell.errors.length > 0 ? ` (+${cell.errors.length} failed)` : ''} | ${fmt(median(cell.cpu), 1)} | ` +
      `${fmt(ratio(m, one), 2)} | ${fmt(ratio(m, haproxyN), 2)} |`,
  );
}
console.log(lines.join('\n'));
