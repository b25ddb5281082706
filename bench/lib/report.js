// Markdown tables of one benchmark run (what `npm run bench` prints and docs/benchmarks.md quotes).
// Every table says which Node the proxies ran on and over how many rounds.

/**
 * One run of one target in one round.
 * @typedef {import('./workloads.js').Result & {
 *   round: number, seconds: number, cpuSeconds: number | null, cpuUserSeconds: number | null,
 *   cpuPerUnit: number | null, cpuUserPerUnit: number | null }} Run
 *
 * One target under one workload, over every round.
 * @typedef {object} Cell
 * @property {Run[]} runs
 * @property {string[]} errors
 * @property {number | null} rssMiB  the proxy's RSS after the last round (process tree)
 * @property {{ p99Ms: number | null, value: number | null, median: number | null, best: number | null,
 *   spread: number | null, cpuPerUnit: number | null, cpuUserPerUnit: number | null }} [summary]
 *
 * @typedef {object} WorkloadResult
 * @property {string} name
 * @property {string} label
 * @property {string} unit
 * @property {string} cpuUnit
 * @property {string} command
 * @property {Record<string, Cell>} targets
 * @property {Record<string, number | null>} addedP99Ms
 * @property {Record<string, number | null>} ratios
 *
 * The JSON written to bench/results/.
 * @typedef {object} Results
 * @property {string} startedAt
 * @property {string} [finishedAt]
 * @property {number} [durationSeconds]
 * @property {{ rounds: number, quick: boolean, stat: 'median' | 'best', warmup: boolean,
 *   workers: number, scheduling: string | null }} options
 * @property {Awaited<ReturnType<typeof import('./machine.js').describeMachine>> & { loadAverageAtEnd?: number[] }} machine
 * @property {{ name: string, label: string, skipped: string | null }[]} targets
 * @property {WorkloadResult[]} workloads
 * @property {string[]} problems
 */

/** One process: at least this fraction of the naive proxy on every workload (on Node 24). */
export const TARGET_RATIO = 0.97;

/**
 * Switchyard with `workers: N` against HAProxy with `nbthread N`, as a fraction of HAProxy's
 * figure per workload (the goals set for Node 24 with reuseport).
 */
/** @type {Record<string, number>} */
export const HAPROXY_TARGETS = { bulk: 0.9, requests: 0.95, churn: 0.7 };

const proxies = ['switchyard', 'naive', 'haproxy', 'naive-nodelay', 'switchyard-semi0', 'naive-reuseport'];

/** @param {Results} results */
export function markdown(results) {
  const targets = results.targets.filter((t) => !t.skipped);
  const { stat, rounds } = results.options;
  const node = `Node ${results.machine.node}`;
  const ofRounds = `of ${rounds} round${rounds === 1 ? '' : 's'}`;
  const out = [];

  out.push(`### Throughput (${node}, ${stat} ${ofRounds}; higher is better)`, '');
  out.push(
    row([
      'workload',
      ...targets.map((t) => t.label),
      'Switchyard / naive',
      'Switchyard / HAProxy',
      'naive / HAProxy',
    ]),
    row(['---', ...targets.map(() => '---:'), '---:', '---:', '---:']),
  );
  for (const w of results.workloads) {
    out.push(
      row([
        `${w.label} (${w.unit})`,
        ...targets.map((t) => formatValue(w.targets[t.name]?.summary?.value, w.unit)),
        verdict(w.ratios.switchyardToNaive),
        formatRatio(w.ratios.switchyardToHaproxy),
        formatRatio(w.ratios.naiveToHaproxy),
      ]),
    );
  }

  const workers = results.options.workers ?? 1;
  if (workers > 1) {
    out.push(
      '',
      `### ${workers} Switchyard workers against HAProxy nbthread ${workers} (the multi-process targets; ${node}, ${stat} ${ofRounds})`,
      '',
      row([
        'workload',
        'Switchyard / HAProxy',
        'target',
        'met',
        'naive reuseport / HAProxy',
        'Switchyard / naive reuseport',
      ]),
      row(['---', '---:', '---:', '---', '---:', '---:']),
    );
    for (const w of results.workloads) {
      const r = w.ratios.switchyardToHaproxy;
      const goal = HAPROXY_TARGETS[w.name];
      const met = r === null || goal === undefined ? '–' : r >= goal ? '✅' : '❌';
      out.push(
        row([
          w.name,
          formatRatio(r),
          goal === undefined ? '–' : `≥ ${goal.toFixed(2)}×`,
          met,
          // The same N processes of the naive pipe (`--targets ...,naive-reuseport`): what Node
          // itself reaches against HAProxy, with no code of ours in the path.
          formatRatio(w.ratios.naiveReuseportToHaproxy ?? null),
          formatRatio(w.ratios.switchyardToNaiveReuseport ?? null),
        ]),
      );
    }
  }

  const latency = results.workloads.filter((w) =>
    Object.values(w.targets).some((c) => c.summary?.p99Ms !== null && c.summary?.p99Ms !== undefined),
  );
  if (latency.length > 0) {
    out.push(
      '',
      `### p99 latency, and what each proxy adds over direct (${node}, median ${ofRounds}, ms; lower is better)`,
      '',
      row(['workload', ...targets.map((t) => t.label)]),
      row(['---', ...targets.map(() => '---:')]),
    );
    for (const w of latency) {
      out.push(
        row([
          w.name,
          ...targets.map((t) => {
            const p99 = w.targets[t.name]?.summary?.p99Ms;
            const added = w.addedP99Ms?.[t.name];
            if (p99 === null || p99 === undefined) return '–';
            return added === null || added === undefined
              ? p99.toFixed(3)
              : `${p99.toFixed(3)} (${added < 0 ? '−' : '+'}${Math.abs(added).toFixed(3)})`;
          }),
        ]),
      );
    }
  }

  const cpuTargets = targets.filter((t) => proxies.includes(t.name));
  if (cpuTargets.length > 0) {
    out.push(
      '',
      `### CPU time of the proxy process per unit of work (${node}, median ${ofRounds}; lower is better)`,
      ...(workers > 1 ? ['', 'Switchyard’s figure sums its cluster primary and every worker process.'] : []),
      '',
      'Each cell: user + kernel time, then user-mode time alone in parentheses. Kernel time is mostly',
      'the TCP stack, the same syscalls for every proxy; user time is the proxy’s own code.',
      '',
    );
    out.push(
      row(['workload', ...cpuTargets.map((t) => t.label), 'Switchyard / naive', 'Switchyard / HAProxy']),
      row(['---', ...cpuTargets.map(() => '---:'), '---:', '---:']),
    );
    for (const w of results.workloads) {
      out.push(
        row([
          `${w.label} (${w.cpuUnit})`,
          ...cpuTargets.map((t) => {
            const summary = w.targets[t.name]?.summary;
            return `${formatNumber(summary?.cpuPerUnit)} (${formatNumber(summary?.cpuUserPerUnit)})`;
          }),
          formatRatio(w.ratios.cpuSwitchyardToNaive),
          formatRatio(w.ratios.cpuSwitchyardToHaproxy),
        ]),
      );
    }
  }

  out.push(
    '',
    `### Every round (${node}, ${rounds} round${rounds === 1 ? '' : 's'}, target order rotated each round; headline figure; spread = (max − min) / median)`,
    '',
  );
  out.push(
    row(['workload', 'target', 'rounds', 'spread', 'proxy RSS after (MiB)']),
    row(['---', '---', '---', '---:', '---:']),
  );
  for (const w of results.workloads) {
    for (const t of targets) {
      const cell = w.targets[t.name];
      if (!cell) continue;
      const runs = cell.runs.map((r) => formatValue(r.value, w.unit)).join(', ');
      const errors = cell.errors.length > 0 ? ` (${cell.errors.length} failed)` : '';
      out.push(
        row([
          w.name,
          t.label,
          runs + errors || 'none',
          cell.summary?.spread == null ? '' : `${Math.round(cell.summary.spread * 100)}%`,
          formatNumber(cell.rssMiB),
        ]),
      );
    }
  }

  const skipped = results.targets.filter((t) => t.skipped);
  const failures = results.workloads.flatMap((w) =>
    Object.entries(w.targets).flatMap(([t, c]) => c.errors.map((e) => `${w.name} × ${t}: ${firstLine(e)}`)),
  );
  const problems = results.problems ?? [];
  if (skipped.length > 0 || failures.length > 0 || problems.length > 0) {
    out.push('', '### Notes', '');
    for (const p of problems) out.push(`- ${firstLine(p)}`);
    for (const t of skipped) out.push(`- ${t.label} skipped: ${t.skipped}`);
    for (const f of failures) out.push(`- failed: ${f}`);
  }
  return out.join('\n');
}

/** @param {string[]} cells */
function row(cells) {
  return `| ${cells.join(' | ')} |`;
}

/** @param {number | null | undefined} r */
function verdict(r) {
  if (r === null || r === undefined) return '–';
  return `${formatRatio(r)} ${r >= TARGET_RATIO ? '✅' : '❌'}`;
}

/** @param {number | null | undefined} r */
export function formatRatio(r) {
  return r === null || r === undefined ? '–' : `${r.toFixed(2)}×`;
}

/**
 * @param {number | null | undefined} v
 * @param {string} unit
 */
export function formatValue(v, unit) {
  if (v === null || v === undefined) return '–';
  if (unit === 'Gbit/s') return v.toFixed(2);
  return v >= 1000 ? `${(v / 1000).toFixed(1)}k` : v.toFixed(0);
}

/** @param {number | null | undefined} v */
export function formatNumber(v) {
  if (v === null || v === undefined) return '–';
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/**
 * An error in one line: its first line, plus its last one (often the child's own message).
 * @param {string} text
 */
function firstLine(text) {
  const lines = String(text).trim().split('\n');
  return lines.length > 1 ? `${lines[0]} — ${lines.at(-1)}` : lines[0];
}
