// `npm run bench:balancers`: every balancer on the same run — spread over five backends of
// unequal speed, keys remapped when a backend leaves and returns, and the cost of one
// `select` at 10 and 1,000 backends. Loopback only; see README.md.
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { withCleanup } from '../lib/cleanup.js';
import { waitForMessage } from '../lib/ipc.js';
import { NODE_OPTION_HELP, nodeBinary } from '../lib/node-binary.js';
import { freePort, waitForPort } from '../lib/ports.js';
import { start, stop } from '../lib/procs.js';
import { median } from '../lib/stats.js';
import { spreadBalancers } from './balancers.js';
import { runSpread } from './spread.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const here = fileURLToPath(new URL('.', import.meta.url));
/** @param {string} text */
const positive = (text) => {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('a positive number');
  return n;
};

const program = new Command()
  .name('bench/balancers/run.js')
  .description('Compare every balancer: spread, remapped keys, select cost (loopback only).')
  .option('--node <path>', `${NODE_OPTION_HELP}; the select measurements run on it too`)
  .option('-d, --duration <s>', 'seconds measured per balancer and round in the spread workload', positive, 3)
  .option(
    '-r, --rounds <n>',
    'spread rounds; the order of balancers rotates every round (medians)',
    positive,
    3,
  )
  .option('-c, --concurrency <n>', 'client connection loops in the spread workload', positive, 32)
  .option('--times <ms>', 'service time per request of the five backends', '4,8,16,32,64')
  .option('--workers <n>', 'requests each backend serves at once (the rest queue)', positive, 2)
  .addOption(
    new Option('--only <parts>', 'comma-separated parts: spread, select')
      .default(['spread', 'select'])
      .argParser((t) => t.split(',')),
  );
/** @type {{ node?: string, duration: number, rounds: number, concurrency: number, times: string, workers: number, only: string[] }} */
const o = program.parse().opts();
const node = nodeBinary(o.node);

/** @param {string[]} cells */
const row = (cells) => `| ${cells.join(' | ')} |`;
/** @param {number | null | undefined} v */
const fixed = (v, d = 1) => (v !== null && v !== undefined && Number.isFinite(v) ? v.toFixed(d) : '–');
/** @param {number} v */
const pct = (v) => `${(v * 100).toFixed(1)}%`;

/** @param {string} dir */
async function spreadPart(dir) {
  const times = o.times.split(',').map(Number);
  const backends = start(process.execPath, [join(here, 'slow-backends.js'), o.times, String(o.workers)], {
    name: 'slow backends',
    ipc: true,
  });
  const { ports } = await waitForMessage(backends, 'ready', 15_000);
  /** @type {Map<string, import('./spread.js').SpreadResult[]>} */
  const runs = new Map(spreadBalancers.map((b) => [b.name, []]));
  for (let round = 0; round < o.rounds; round++) {
    // Rotate the order every round: the machine's load drifts, and whoever runs first pays for it.
    const order = spreadBalancers.map((_, i) => spreadBalancers[(i + round) % spreadBalancers.length]);
    for (const balancer of order) {
      const port = await freePort();
      const file = join(dir, `${port}.yaml`);
      writeFileSync(
        file,
        [
          `listen: 127.0.0.1:${port}`,
          'log_level: warn',
          'backends:',
          ...ports.map((/** @type {number} */ p) => `  - address: 127.0.0.1:${p}`),
          'plugins:',
          `  ${balancer.plugins}`,
          '',
        ].join('\n'),
      );
      const proxy = start(node.path, ['bin/switchyard.js', '--config', file, '--no-pretty'], {
        name: `switchyard (${balancer.name})`,
        cwd: repo,
      });
      try {
        await waitForPort(port, proxy);
        const r = await runSpread({
          port,
          concurrency: o.concurrency,
          durationMs: o.duration * 1000,
          warmupMs: 500,
        });
        runs.get(balancer.name)?.push(r);
        process.stderr.write(`spread round ${round + 1}/${o.rounds}: ${balancer.name} done\n`);
      } finally {
        await stop(proxy);
      }
    }
  }
  await stop(backends);

  const names = times.map((_, i) => `b${i}`);
  console.log(
    `\n### Spread: ${o.concurrency} clients, a new connection per request, 5 backends serving ${o.workers} at a time in ${times.join(' / ')} ms (proxy on Node ${node.version}; medians of ${o.rounds} rounds of ${o.duration} s; shares of all sessions)\n`,
  );
  console.log(
    row([
      'balancer',
      'sessions/s',
      'p50 ms',
      'p99 ms',
      ...names.map((n, i) => `${n} (${times[i]} ms)`),
      'errors',
    ]),
  );
  console.log(row(['---', ...Array(4 + names.length).fill('---:')]));
  for (const [name, rs] of runs) {
    /** @type {Record<string, number>} */
    const byBackend = {};
    for (const r of rs)
      for (const [k, v] of Object.entries(r.byBackend)) byBackend[k] = (byBackend[k] ?? 0) + v;
    const sessions = rs.reduce((a, r) => a + r.sessions, 0);
    console.log(
      row([
        name,
        fixed(median(rs.map((r) => r.perSecond)), 0),
        fixed(median(rs.map((r) => r.p50))),
        fixed(median(rs.map((r) => r.p99))),
        ...names.map((n) => pct((byBackend[n] ?? 0) / Math.max(1, sessions))),
        String(rs.reduce((a, r) => a + r.errors, 0)),
      ]),
    );
  }
}

async function selectPart() {
  const child = start(node.path, [join(here, 'in-process.js'), '10,1000'], {
    name: 'select measurements',
    cwd: repo,
    ipc: true,
  });
  const { keys, results, rebuild } = await waitForMessage(child, 'result', 600_000);
  await stop(child);
  console.log(
    `\n### Keys remapped when 1 of 10 backends leaves, then returns (${keys} client addresses, Node ${node.version})\n`,
  );
  console.log(row(['balancer', "leaving backend's share", 'remapped: leaves', 'remapped: returns']));
  console.log(row(['---', '---:', '---:', '---:']));
  for (const r of results)
    console.log(row([r.name, pct(r.remap.own), pct(r.remap.leaves), pct(r.remap.returns)]));
  console.log(`\n### Cost of one select, ns (best of 7 interleaved rounds; Node ${node.version})\n`);
  console.log(
    row(['balancer', '10 backends', '10, one filtered out', '1,000 backends', '1,000, one filtered out']),
  );
  console.log(row(['---', '---:', '---:', '---:', '---:']));
  for (const r of results)
    console.log(
      row([
        r.name,
        fixed(r.select[10].all, 0),
        fixed(r.select[10].filtered, 0),
        fixed(r.select[1000].all, 0),
        fixed(r.select[1000].filtered, 0),
      ]),
    );
  console.log(
    `\nTable rebuild (off the hot path), ms: ${Object.entries(rebuild)
      .map(([k, v]) => `${k} backends ${fixed(/** @type {number} */ (v))}`)
      .join(', ')}`,
  );
}

console.log(
  `Balancer bench — proxy and select on Node ${node.version} (runner ${process.version}), ${os.cpus()[0]?.model ?? 'cpu'} x ${os.availableParallelism()}, load average at start ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
await withCleanup(async (dir) => {
  if (o.only.includes('spread')) await spreadPart(dir);
  if (o.only.includes('select')) await selectPart();
});
