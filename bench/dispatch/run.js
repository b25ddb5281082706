// Should Switchyard replace node:cluster's round-robin with its own dispatcher? Measures a naive
// pipe proxy (2 workers unless noted) behind every dispatch strategy, plus one process and
// HAProxy, with redis-server as the backend and redis-benchmark as the client, then the
// primary's descriptor guard. Bounded to ~5 minutes; every process it starts is killed.
//
// Usage: node bench/dispatch/run.js [--churn-n 50000] [--churn-s 20] [--persistent-n 50000] [--only a,b]
//                                   [--no-guard-demo] [--no-pitfalls] [--budget-s 280]
// Variants: direct single rr none socket native native-v8 haproxy. Writes results/<time>.json;
// `node bench/dispatch/median.js` prints medians over the saved runs.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { redisBenchmark } from './benchmark.js';
import { killAll } from './children.js';
import { guardDemo } from './guard-demo.js';
import { processTree, treeCpu, treeCpuDelta } from './proc.js';
import { sampleFds } from './sampler.js';
import { startHaproxy, startProxy, startRedis } from './servers.js';
import { formatTable, GUARD_COLUMNS, RESULT_COLUMNS } from './table.js';

const { values } = parseArgs({
  options: {
    'churn-n': { type: 'string', default: '50000' },
    'churn-s': { type: 'string', default: '20' },
    'persistent-n': { type: 'string', default: '50000' },
    only: { type: 'string' },
    'no-guard-demo': { type: 'boolean', default: false },
    'no-pitfalls': { type: 'boolean', default: false },
    'budget-s': { type: 'string', default: '280' },
  },
});
const churnMax = Number(values['churn-n']);
const churnSeconds = Number(values['churn-s']);
const persistentN = Number(values['persistent-n']);
const deadline = Date.now() + Number(values['budget-s']) * 1000;

const VARIANTS = [
  {
    id: 'direct',
    label: 'redis direct (no proxy)',
    start: (redis) => ({ port: redis.port, pid: null, stop() {} }),
  },
  { id: 'single', label: '1 process', start: (redis) => startProxy('single', redis.port) },
  { id: 'rr', label: 'cluster SCHED_RR', start: (redis) => startProxy('rr', redis.port) },
  { id: 'none', label: 'cluster SCHED_NONE', start: (redis) => startProxy('none', redis.port) },
  {
    id: 'socket',
    label: 'custom: net.Socket+guard',
    start: (redis) => startProxy('socket', redis.port, ['--guard']),
  },
  {
    id: 'native',
    label: 'custom: raw handle+guard',
    start: (redis) => startProxy('native', redis.port, ['--guard']),
  },
  {
    id: 'native-v8',
    label: 'custom: raw handle, v8 ser.',
    start: (redis) => startProxy('native', redis.port, ['--guard', '--advanced']),
  },
  { id: 'haproxy', label: 'haproxy nbthread 2', start: (redis, dir) => startHaproxy(dir, redis.port, 2) },
];
const selected =
  values.only === undefined ? VARIANTS : VARIANTS.filter((v) => values.only.split(',').includes(v.id));

function remainingMs() {
  return deadline - Date.now();
}

/** CPU split between a cluster's workers (all pids but the root), e.g. "51/49". */
function workerSplit(root, before, after) {
  const workers = processTree(root).filter((p) => p !== root);
  if (workers.length < 2) return null;
  const d = workers.map((p) => (after.get(p) ?? 0) - (before.get(p) ?? 0));
  const sum = d.reduce((a, b) => a + b, 0);
  return sum > 0 ? d.map((x) => Math.round((100 * x) / sum)).join('/') : null;
}

async function measure(variant, redis, dir) {
  const proxy = await variant.start(redis, dir);
  const row = { variant: variant.label, id: variant.id };
  try {
    // Warm-up (JIT, first hand-offs); its rate sizes the measured run so that a slow variant on
    // a loaded machine still fits the time budget: at most --churn-n connections, about
    // --churn-s seconds.
    const warm = await redisBenchmark(proxy.port, { keepalive: false, requests: 3000, timeoutMs: 15_000 });
    const churnN = Math.max(
      5000,
      Math.min(churnMax, Math.round(((warm.rps ?? 1000) * churnSeconds) / 1000) * 1000),
    );
    row.churnN = churnN;

    let before = proxy.pid === null ? null : treeCpu(proxy.pid);
    const fds = sampleFds(proxy.pid);
    const churn = await redisBenchmark(proxy.port, {
      keepalive: false,
      requests: churnN,
      timeoutMs: Math.max(5000, Math.min(90_000, remainingMs() - 30_000)),
    });
    row.peakFds = fds.stop();
    let after = proxy.pid === null ? null : treeCpu(proxy.pid);
    row.churnRps = churn.rps;
    if (churn.error) row.churnError = churn.error;
    if (before !== null) {
      row.cpuPer1kConn = churn.rps === null ? null : treeCpuDelta(before, after) / (churnN / 1000);
      row.split = workerSplit(proxy.pid, before, after);
      const primary = (after.get(proxy.pid) ?? 0) - (before.get(proxy.pid) ?? 0);
      if (proxy.pid !== null && churn.rps !== null) row.primaryCpuPer1kConn = primary / (churnN / 1000);
    }

    before = proxy.pid === null ? null : treeCpu(proxy.pid);
    const persistent = await redisBenchmark(proxy.port, {
      keepalive: true,
      requests: persistentN,
      timeoutMs: Math.max(5000, Math.min(60_000, remainingMs() - 20_000)),
    });
    after = proxy.pid === null ? null : treeCpu(proxy.pid);
    row.persistentRps = persistent.rps;
    if (persistent.error) row.persistentError = persistent.error;
    if (before !== null && persistent.rps !== null) {
      row.cpuPer100kReq = treeCpuDelta(before, after) / (persistentN / 100_000);
    }
    if (['socket', 'native', 'native-v8'].includes(variant.id)) {
      await new Promise((r) => setTimeout(r, 300)); // let the workers' close reports arrive
      row.stats = await proxy.stats();
    }
  } finally {
    proxy.stop();
  }
  return row;
}

async function main() {
  const dir = mkdtempSync(join(os.tmpdir(), 'dispatch-bench-'));
  const started = new Date();
  const redis = await startRedis();
  const rows = [];
  let guard = null;
  let pitfalls = null;
  try {
    for (const variant of selected) {
      if (remainingMs() < 25_000) {
        console.error(`skipping ${variant.id}: time budget used`);
        continue;
      }
      process.stderr.write(`${variant.label} ... `);
      try {
        const row = await measure(variant, redis, dir);
        rows.push(row);
        process.stderr.write(
          `churn ${row.churnRps ?? row.churnError} persistent ${row.persistentRps ?? row.persistentError}\n`,
        );
      } catch (err) {
        process.stderr.write(`failed: ${err.message}\n`);
        rows.push({ variant: variant.label, id: variant.id, error: err.message });
      }
    }
    if (!values['no-guard-demo'] && remainingMs() > 20_000) {
      process.stderr.write('guard demo ...\n');
      guard = (await guardDemo(redis.port)).map((r) => ({
        ...r,
        refused: r.stats.refused,
        failed: r.stats.failed,
      }));
    }
    if (!values['no-pitfalls'] && remainingMs() > 10_000) {
      const script = new URL('./pitfalls.js', import.meta.url).pathname;
      try {
        pitfalls = JSON.parse(
          execFileSync(process.execPath, [script], { encoding: 'utf8', timeout: 25_000 }),
        );
      } catch (err) {
        pitfalls = { error: err.message };
      }
    }
  } finally {
    redis.stop();
    killAll();
    rmSync(dir, { recursive: true, force: true });
  }

  const machine = `${os.cpus().length} CPUs, Node ${process.version}, load ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`;
  const ns = rows.map((r) => r.churnN).filter(Boolean);
  console.log(
    `\n${machine}; churn: -c 50 -k 0 -n ${Math.min(...ns)}..${Math.max(...ns)} (~${churnSeconds} s each, at most ${churnMax}); persistent: -c 50 -n ${persistentN} -k 1; 2 workers`,
  );
  console.log(formatTable(RESULT_COLUMNS, rows));
  for (const r of rows) {
    if (r.error) console.log(`${r.variant}: ${r.error}`);
    if (r.stats) console.log(`${r.variant}: dispatcher ${JSON.stringify(r.stats)}`);
  }
  if (guard !== null) {
    console.log(
      '\nPrimary at its open-files limit (prlimit on the primary only; 3000 connections, 400 at a time):',
    );
    console.log(formatTable(GUARD_COLUMNS, guard));
  }
  if (pitfalls !== null) {
    const w = pitfalls.workerSocket;
    console.log('\nA socket sent by the primary, as the worker gets it (pitfalls.js):');
    if (pitfalls.error) console.log(`  failed: ${pitfalls.error}`);
    else {
      console.log(
        `  net.Socket: ${w.isNetSocket}, allowHalfOpen: ${w.allowHalfOpen}, socket.server: ${w.hasServer}, ` +
          `reads before any listener: ${w.bufferedWithoutListener} bytes buffered, early client bytes arrive: ${w.firstChunk === 'early bytes'}`,
      );
      console.log(
        `  primary server.close() with a sent socket still open: ${pitfalls.primaryServerCloseWhileWorkerHoldsSocket}`,
      );
      console.log(
        `  TLS terminated in the worker (tls.Server emit('connection')): ${pitfalls.tlsInWorker.protocol} echo ok: ${pitfalls.tlsInWorker.echo === 'over tls'}`,
      );
    }
  }
  const resultsDir = new URL('./results/', import.meta.url).pathname;
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `${started.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    `${JSON.stringify({ started, machine, churnMax, churnSeconds, persistentN, rows, guard, pitfalls }, null, 2)}\n`,
  );
  console.log(`\nsaved ${file}`);
}

await main();
