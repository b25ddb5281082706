// `npm run bench:balancers`: every balancer on the same run — spread over five backends of
// unequal speed, keys remapped when a backend leaves and returns, and the cost of one
// `select` at 10 and 1,000 backends. Loopback only; see README.md.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { spreadBalancers } from './balancers.js';
import { freePort, startChild, startServer, stopAll } from './procs.js';
import { runSpread } from './spread.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const here = fileURLToPath(new URL('.', import.meta.url));
const positive = (text) => {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('a positive number');
  return n;
};

const program = new Command()
  .name('bench/balancers/run.js')
  .description('Compare every balancer: spread, remapped keys, select cost (loopback only).')
  .option('--node <path>', 'Node binary for the proxy and the select measurements', process.execPath)
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
    new Option('--only <parts>', 'comma-separated parts')
      .default('spread,select')
      .argParser((t) => t.split(',')),
  );
const o = program.parse().opts();

const row = (cells) => `| ${cells.join(' | ')} |`;
const fixed = (v, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : '–');
const pct = (v) => `${(v * 100).toFixed(1)}%`;

async function spreadPart(nodeVersion) {
  const times = o.times.split(',').map(Number);
  const backends = await startChild(process.execPath, [
    join(here, 'slow-backends.js'),
    o.times,
    String(o.workers),
  ]);
  const { ports } = await backends.next();
  const dir = mkdtempSync(join(os.tmpdir(), 'switchyard-bench-balancers-'));
  /** @type {Map<string, Array<Awaited<ReturnType<typeof runSpread>>>>} */
  const runs = new Map(spreadBalancers.map((b) => [b.name, []]));
  try {
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
            ...ports.map((p) => `  - address: 127.0.0.1:${p}`),
            'plugins:',
            `  ${balancer.plugins}`,
            '',
          ].join('\n'),
        );
        const proxy = await startServer(
          o.node,
          ['bin/switchyard.js', '--config', file, '--no-pretty'],
          port,
          {
            cwd: repo,
          },
        );
        try {
          const r = await runSpread({
            port,
            concurrency: o.concurrency,
            durationMs: o.duration * 1000,
            warmupMs: 500,
          });
          runs.get(balancer.name).push(r);
          process.stderr.write(`spread round ${round + 1}/${o.rounds}: ${balancer.name} done\n`);
        } finally {
          await proxy.stop();
        }
      }
    }
  } finally {
    await backends.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const median = (values) => {
    const v = [...values].sort((a, b) => a - b);
    return v.length % 2 === 1 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
  };
  const rows = [...runs].map(([name, rs]) => {
    const byBackend = {};
    for (const r of rs)
      for (const [k, v] of Object.entries(r.byBackend)) byBackend[k] = (byBackend[k] ?? 0) + v;
    return {
      name,
      perSecond: median(rs.map((r) => r.perSecond)),
      p50: median(rs.map((r) => r.p50)),
      p99: median(rs.map((r) => r.p99)),
      sessions: rs.reduce((a, r) => a + r.sessions, 0),
      errors: rs.reduce((a, r) => a + r.errors, 0),
      byBackend,
    };
  });
  const names = times.map((_, i) => `b${i}`);
  console.log(
    `\n### Spread: ${o.concurrency} clients, a new connection per request, 5 backends serving ${o.workers} at a time in ${times.join(' / ')} ms (Node ${nodeVersion}; medians of ${o.rounds} rounds of ${o.duration} s; shares of all sessions)\n`,
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
  for (const r of rows)
    console.log(
      row([
        r.name,
        fixed(r.perSecond, 0),
        fixed(r.p50),
        fixed(r.p99),
        ...names.map((n) => pct((r.byBackend[n] ?? 0) / Math.max(1, r.sessions))),
        String(r.errors),
      ]),
    );
}

async function selectPart() {
  const child = await startChild(o.node, [join(here, 'in-process.js'), '10,1000'], {
    cwd: repo,
    timeoutMs: 300_000,
  });
  const { node, keys, results, rebuild } = await child.next(300_000);
  await child.stop();
  console.log(
    `\n### Keys remapped when 1 of 10 backends leaves, then returns (${keys} client addresses, Node ${node})\n`,
  );
  console.log(row(['balancer', "leaving backend's share", 'remapped: leaves', 'remapped: returns']));
  console.log(row(['---', '---:', '---:', '---:']));
  for (const r of results)
    console.log(row([r.name, pct(r.remap.own), pct(r.remap.leaves), pct(r.remap.returns)]));
  console.log(`\n### Cost of one select, ns (best of 7 interleaved rounds; Node ${node})\n`);
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
    '\nTable rebuild (off the hot path), ms: ' +
      Object.entries(rebuild)
        .map(([k, v]) => `${k} backends ${fixed(v)}`)
        .join(', '),
  );
}

try {
  const nodeVersion = (
    await startChild(o.node, ['-e', 'console.log(JSON.stringify(process.version))'])
  ).next();
  const version = await nodeVersion;
  console.log(
    `Balancer bench — Node ${version}, ${os.cpus()[0]?.model ?? 'cpu'} x ${os.availableParallelism()}, load average at start ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  if (o.only.includes('spread')) await spreadPart(version);
  if (o.only.includes('select')) await selectPart();
} finally {
  stopAll();
}
