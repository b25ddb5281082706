// `npm run bench`: Switchyard side by side with no proxy, a naive Node pipe proxy and HAProxy,
// on bulk throughput, small request/response and connection churn. See docs/benchmarks.md.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { startIperf3, startRedis } from './lib/backends.js';
import { withCleanup } from './lib/cleanup.js';
import { describeMachine } from './lib/machine.js';
import { NODE_OPTION_HELP, nodeBinary } from './lib/node-binary.js';
import { positiveInt } from './lib/options.js';
import { treeCpuDelta, treeCpuTimes, treeRssMiB } from './lib/proc-stats.js';
import { which } from './lib/procs.js';
import { markdown, TARGET_RATIO } from './lib/report.js';
import { best, median, ratio, spread } from './lib/stats.js';
import { allTargets, defaultTargets } from './lib/targets.js';
import { allWorkloads } from './lib/workloads.js';

const program = new Command()
  .name('bench/run.js')
  .description('Benchmark Switchyard against no proxy, a naive Node proxy and HAProxy (loopback only).')
  .option('-r, --rounds <n>', 'rounds; each round runs every target once per workload', positiveInt, 3)
  .addOption(
    new Option('-o, --only <workloads>', 'comma-separated workloads to run').argParser((text) =>
      text.split(',').map((w) => w.trim()),
    ),
  )
  .option(
    '-t, --targets <targets>',
    'comma-separated targets (default: direct,switchyard,naive,haproxy)',
    (/** @type {string} */ text) => text.split(',').map((t) => t.trim()),
  )
  .option('-q, --quick', 'shorter runs (iperf3 2 s, fewer requests), 2 rounds unless --rounds is given')
  .addOption(
    new Option('-s, --stat <stat>', 'figure taken across rounds')
      .choices(['median', 'best'])
      .default('median'),
  )
  .option('--budget <minutes>', 'stop starting new runs after this many minutes', positiveInt, 9)
  .option('--no-warmup', 'skip the short warm-up run of each target')
  .option(
    '-w, --workers <n>',
    'Switchyard `workers: N` against HAProxy `nbthread N` (the naive proxy stays one process)',
    positiveInt,
    1,
  )
  .addOption(
    new Option('--scheduling <policy>', 'Switchyard `scheduling` when --workers > 1')
      .choices(['auto', 'reuseport', 'rr', 'none'])
      .default('auto'),
  )
  .option('--node <path>', NODE_OPTION_HELP)
  .addHelpText(
    'after',
    `\nWorkloads: ${allWorkloads.map((w) => w.name).join(', ')}\nTargets: ${allTargets.map((t) => t.name).join(', ')}`,
  );
program.parse();
const opts = program.opts();
if (opts.quick && program.getOptionValueSource('rounds') === 'default') opts.rounds = 2;

const workloads = pick(allWorkloads, opts.only, 'workload');
const targets = opts.targets ? pick(allTargets, opts.targets, 'target') : defaultTargets;
const node = (() => {
  try {
    return nodeBinary(opts.node);
  } catch (err) {
    return program.error(/** @type {Error} */ (err).message);
  }
})();

/**
 * @template {{ name: string }} T
 * @param {T[]} all
 * @param {string[] | undefined} names
 * @param {string} what
 */
function pick(all, names, what) {
  if (!names) return all;
  const unknown = names.filter((n) => !all.some((x) => x.name === n));
  if (unknown.length > 0)
    program.error(
      `unknown ${what}: ${unknown.join(', ')} (choose from ${all.map((x) => x.name).join(', ')})`,
    );
  return all.filter((x) => names.includes(x.name));
}

/**
 * With --workers N the labels say how many processes or threads each proxy ran.
 * @param {import('./lib/targets.js').Target} target
 */
function labelOf(target) {
  if (opts.workers === 1) return target.label;
  if (target.name.startsWith('switchyard'))
    return `${target.label} (${opts.workers} workers, ${opts.scheduling})`;
  if (target.name === 'haproxy') return `${target.label} (nbthread ${opts.workers})`;
  if (target.name === 'naive-reuseport') return `naive Node pipe (${opts.workers} processes, reuseport)`;
  return target.label;
}
/** @type {import('./lib/targets.js').StartOptions} */
const startOptions = { workers: opts.workers, scheduling: opts.scheduling, node: node.path };

const startedAt = Date.now();
const deadline = startedAt + opts.budget * 60_000;
const log = (/** @type {string} */ text) => process.stderr.write(`${text}\n`);

const haproxyInstalled = await which('haproxy');
/** @type {import('./lib/report.js').Results} */
const results = {
  startedAt: new Date(startedAt).toISOString(),
  options: {
    rounds: opts.rounds,
    quick: Boolean(opts.quick),
    stat: opts.stat,
    warmup: opts.warmup,
    workers: opts.workers,
    scheduling: opts.workers > 1 ? opts.scheduling : null,
  },
  machine: await describeMachine(haproxyInstalled, node),
  targets: targets.map((t) => ({
    name: t.name,
    label: labelOf(t),
    skipped:
      t.name === 'haproxy' && !haproxyInstalled ? 'haproxy is not installed (apt-get install haproxy)' : null,
  })),
  workloads: [],
  /** Workloads that could not run at all (a server missing, the time budget spent). */
  problems: [],
};
const active = targets.filter((t) => !results.targets.find((r) => r.name === t.name)?.skipped);

await withCleanup(async (dir) => {
  for (const workload of workloads) {
    if (Date.now() > deadline) {
      results.problems.push(`${workload.name} skipped: the ${opts.budget} min budget was used up`);
      continue;
    }
    try {
      results.workloads.push(await runWorkload(workload, dir));
    } catch (err) {
      results.problems.push(`${workload.name} could not run: ${/** @type {Error} */ (err).message}`);
    }
  }
});

for (const problem of results.problems) log(problem);
results.finishedAt = new Date().toISOString();
results.durationSeconds = Math.round((Date.now() - startedAt) / 1000);
const loadAverageAtEnd = os.loadavg().map((l) => Number(l.toFixed(2)));
results.machine.loadAverageAtEnd = loadAverageAtEnd;

const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(resultsDir, { recursive: true });
const file = `${resultsDir}${results.startedAt.replaceAll(':', '-').replace(/\..*/, '')}.json`;
writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);

const m = results.machine;
console.log(
  `\n## Switchyard benchmark, ${results.startedAt}\n\n` +
    `${m.cores} × ${m.cpu}, ${m.memGiB} GiB, ${m.kernel}, Node ${m.node} (${m.nodePath}), HAProxy ${m.haproxy ?? 'n/a'}, ` +
    `redis ${m.redis}, iperf3 ${m.iperf3}; load average ${m.loadAverageAtStart.join(' ')} at start, ` +
    `${loadAverageAtEnd.join(' ')} at end; ${results.durationSeconds} s.\n`,
);
console.log(markdown(results));
console.log(`\nJSON: ${file}`);
const slow = results.workloads.filter(
  (w) => w.ratios.switchyardToNaive !== null && w.ratios.switchyardToNaive < TARGET_RATIO,
);
if (slow.length > 0) {
  console.log(
    `\nSwitchyard is below ${TARGET_RATIO}× the naive proxy on: ${slow.map((w) => w.name).join(', ')}. ` +
      `Profile with: node bench/profile.js --only ${slow.map((w) => w.name).join(',')}`,
  );
}

/**
 * One workload: fresh backend and proxies, a warm-up, then rounds with the target order rotated.
 * @param {import('./lib/workloads.js').Workload} workload
 * @param {string} dir
 * @returns {Promise<import('./lib/report.js').WorkloadResult>}
 */
async function runWorkload(workload, dir) {
  log(`\n${workload.label}: ${workload.describe(Boolean(opts.quick))}`);
  const backend = workload.backend === 'iperf3' ? await startIperf3() : await startRedis();
  /** @type {Record<string, import('./lib/report.js').Cell>} */
  const cells = {};
  /** @type {Map<string, import('./lib/targets.js').RunningTarget>} */
  const running = new Map();
  try {
    for (const target of active) {
      cells[target.name] = { runs: [], errors: [], rssMiB: null };
      try {
        running.set(target.name, await target.start(backend.port, dir, startOptions));
      } catch (err) {
        const message = /** @type {Error} */ (err).message;
        cells[target.name].errors.push(`start: ${message}`);
        log(`  ${target.name}: failed to start: ${message}`);
      }
    }
    if (opts.warmup) {
      for (const [name, t] of running) {
        try {
          await workload.warmup(t.port);
        } catch (err) {
          log(`  ${name}: warm-up failed: ${/** @type {Error} */ (err).message.split('\n')[0]}`);
        }
      }
    }
    const names = [...running.keys()];
    for (let round = 0; round < opts.rounds; round++) {
      // Rotate so no target always runs first (or right after the heaviest one).
      const order = names.map((_, i) => names[(i + round) % names.length]);
      for (const name of order) {
        if (Date.now() > deadline) break;
        const t = /** @type {import('./lib/targets.js').RunningTarget} */ (running.get(name));
        // The proxy's process and its children: a Switchyard cluster's primary and workers.
        const cpuBefore = treeCpuTimes(t.pid);
        const t0 = Date.now();
        try {
          const result = await workload.run(t.port, Boolean(opts.quick));
          const delta = cpuBefore === null ? null : treeCpuDelta(cpuBefore, treeCpuTimes(t.pid));
          const user = delta === null ? null : delta.user;
          const cpu = delta === null ? null : delta.user + delta.system;
          const perUnit = (/** @type {number | null} */ seconds) =>
            seconds === null ? null : (seconds / result.work) * workload.cpuScale;
          const cpuPerUnit = perUnit(cpu);
          cells[name].runs.push({
            round,
            ...result,
            seconds: (Date.now() - t0) / 1000,
            cpuSeconds: cpu,
            cpuUserSeconds: user,
            cpuPerUnit,
            cpuUserPerUnit: perUnit(user),
          });
          log(
            `  round ${round + 1} ${name.padEnd(10)} ${result.value.toFixed(workload.unit === 'Gbit/s' ? 2 : 0)} ${workload.unit}` +
              (cpu === null || cpuPerUnit === null
                ? ''
                : `, proxy CPU ${cpu.toFixed(2)} s = ${cpuPerUnit.toFixed(2)} ${workload.cpuUnit}`),
          );
        } catch (err) {
          const message = /** @type {Error} */ (err).message;
          cells[name].errors.push(message);
          log(`  round ${round + 1} ${name}: FAILED: ${message.split('\n')[0]}`);
        }
        // Let the previous run's sockets close and the backend settle.
        await sleep(300);
      }
    }
    for (const [name, t] of running) cells[name].rssMiB = treeRssMiB(t.pid);
  } finally {
    await Promise.all([...running.values()].map((t) => t.stop()));
    await backend.stop();
  }

  for (const cell of Object.values(cells)) {
    const values = cell.runs.map((r) => r.value);
    const cpu = cell.runs.flatMap((r) => (r.cpuPerUnit === null ? [] : [r.cpuPerUnit]));
    const cpuUser = cell.runs.flatMap((r) => (r.cpuUserPerUnit === null ? [] : [r.cpuUserPerUnit]));
    const p99 = cell.runs.map((r) => r.extra?.p99Ms).filter((p) => typeof p === 'number');
    cell.summary = {
      p99Ms: median(p99),
      value: opts.stat === 'best' ? best(values) : median(values),
      median: median(values),
      best: best(values),
      spread: spread(values),
      cpuPerUnit: median(cpu),
      cpuUserPerUnit: median(cpuUser),
    };
  }
  const v = (/** @type {string} */ name) => cells[name]?.summary?.value ?? null;
  const c = (/** @type {string} */ name) => cells[name]?.summary?.cpuPerUnit ?? null;
  return {
    name: workload.name,
    label: workload.label,
    unit: workload.unit,
    cpuUnit: workload.cpuUnit,
    command: workload.describe(Boolean(opts.quick)),
    targets: cells,
    /** Median p99 latency each proxy adds over the client talking to the server directly. */
    addedP99Ms: Object.fromEntries(
      Object.entries(cells)
        .filter(([name]) => name !== 'direct')
        .map(([name, cell]) => [
          name,
          difference(cell.summary?.p99Ms ?? null, cells.direct?.summary?.p99Ms ?? null),
        ]),
    ),
    ratios: {
      switchyardToNaive: ratio(v('switchyard'), v('naive')),
      switchyardToHaproxy: ratio(v('switchyard'), v('haproxy')),
      naiveToHaproxy: ratio(v('naive'), v('haproxy')),
      switchyardToNaiveReuseport: ratio(v('switchyard'), v('naive-reuseport')),
      naiveReuseportToHaproxy: ratio(v('naive-reuseport'), v('haproxy')),
      switchyardToDirect: ratio(v('switchyard'), v('direct')),
      cpuSwitchyardToNaive: ratio(c('switchyard'), c('naive')),
      cpuSwitchyardToHaproxy: ratio(c('switchyard'), c('haproxy')),
      cpuUserSwitchyardToNaive: ratio(
        cells.switchyard?.summary?.cpuUserPerUnit ?? null,
        cells.naive?.summary?.cpuUserPerUnit ?? null,
      ),
    },
  };
}

/**
 * @param {number | null} a
 * @param {number | null} b
 */
function difference(a, b) {
  return a === null || b === null ? null : a - b;
}
