// What a cluster worker's stats round costs with many open sessions: collectStats walks each
// service's session table once per STATS_INTERVAL (500 ms) to report the bytes of open
// sessions (docs/multi-process.md, "Stats"). This opens N real sessions on loopback through
// an in-process Runtime (clients and an echo backend in two child processes, so the proxy
// holds 2 × N descriptors: N = 9,900 fits the usual 20,000 limit) and times collectStats.
//
//   npm run build && node bench/cluster-stats/run.js [--sessions 9900] [--backends 4] [--rounds 200]
import { performance } from 'node:perf_hooks';
import { Command } from 'commander';
import { pino } from 'pino';
import { collectStats } from '../../dist/core/cluster/stats.js';
import { loadConfigText } from '../../dist/core/config/load.js';
import { Runtime } from '../../dist/core/runtime.js';
import { withCleanup } from '../lib/cleanup.js';
import { positiveInt } from '../lib/options.js';
import { start, waitForOutput } from '../lib/procs.js';

const opts = new Command()
  .name('bench/cluster-stats/run.js')
  .description('Time collectStats (a worker stats round) with N open sessions (loopback only).')
  .option('-s, --sessions <n>', 'open sessions', positiveInt, 9900)
  .option('-b, --backends <n>', 'echo listeners (backends) they spread over', positiveInt, 4)
  .option('-r, --rounds <n>', 'collectStats calls timed', positiveInt, 200)
  .parse()
  .opts();

/** Echo listeners on loopback; prints their ports as one line. */
const ECHO = `
const net = require('node:net');
const n = Number(process.argv[1]);
const ports = [];
for (let i = 0; i < n; i++) {
  const s = net.createServer((c) => { c.on('error', () => {}); c.pipe(c); });
  s.listen(0, '127.0.0.1', () => { ports.push(s.address().port); if (ports.length === n) console.log('ports ' + ports.join(',')); });
}`;

/** N clients to the proxy, connected in batches, each echoing 1 KiB once; prints "open N". */
const CLIENTS = `
const net = require('node:net');
const [port, n] = process.argv.slice(1).map(Number);
const sockets = [];
let done = 0;
function one() {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1', () => c.write(Buffer.alloc(1024, 120)));
    let got = 0;
    c.on('data', (d) => { got += d.length; if (got >= 1024) resolve(); });
    c.on('error', reject);
    sockets.push(c);
  });
}
(async () => {
  for (let i = 0; i < n; i += 200) await Promise.all(Array.from({ length: Math.min(200, n - i) }, one));
  console.log('open ' + sockets.length);
})().catch((e) => { console.error(e); process.exit(1); });`;

await withCleanup(async () => {
  const echo = start(process.execPath, ['-e', ECHO, String(opts.backends)], { name: 'echo' });
  const ports = (await waitForOutput(echo, /ports ([\d,]+)/))[1].split(',');
  const yaml = `
listen: 127.0.0.1:0
max_connections: ${opts.sessions + 100}
backends: [${ports.map((p) => `{ address: "127.0.0.1:${p}" }`).join(', ')}]
`;
  const config = await loadConfigText(yaml, 'bench.yaml');
  const runtime = await Runtime.create(config, pino({ level: 'warn' }));
  await runtime.start();
  const service = runtime.defaultService;
  const proxyPort = service.addresses()[0].split(':').pop();
  const clients = start(process.execPath, ['-e', CLIENTS, String(proxyPort), String(opts.sessions)], {
    name: 'clients',
  });
  await waitForOutput(clients, /open \d+/, 120_000);
  console.log(`open sessions: ${service.sessions.size} over ${ports.length} backends`);

  /** @type {number[]} */
  const times = [];
  let stats = collectStats(runtime);
  for (let i = 0; i < opts.rounds; i++) {
    const t0 = performance.now();
    stats = collectStats(runtime);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const open = Object.values(stats.services.default?.backends ?? {}).reduce((n, b) => n + b.openBytesIn, 0);
  const at = (/** @type {number} */ q) =>
    times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? 0;
  console.log(`open bytes reported: ${open} (expected ${opts.sessions * 1024})`);
  console.log(
    `collectStats over ${opts.rounds} rounds: median ${at(0.5).toFixed(3)} ms, p99 ${at(0.99).toFixed(3)} ms, max ${at(1).toFixed(3)} ms` +
      ` (${((at(0.5) / 500) * 100).toFixed(2)} % of a 500 ms interval at the median)`,
  );
  // The same rounds reading only the two socket counters per session, to see what they cost.
  /** @param {(s: import('../../dist/core/types.js').Session) => number} read */
  const walk = (read) => {
    /** @type {number[]} */
    const t = [];
    let sum = 0;
    for (let i = 0; i < opts.rounds; i++) {
      const t0 = performance.now();
      for (const s of service.sessions.values()) sum += read(s);
      t.push(performance.now() - t0);
    }
    t.sort((a, b) => a - b);
    if (sum === 0) throw new Error('no bytes read: the sessions are not open');
    return `${(t[Math.floor(t.length / 2)] ?? 0).toFixed(3)} ms`;
  };
  console.log(`of which client.bytesRead alone: median ${walk((s) => s.client.bytesRead)}`);
  console.log(`of which client.bytesWritten alone: median ${walk((s) => s.client.bytesWritten)}`);
  await runtime.stop();
});
