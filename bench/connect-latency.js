#!/usr/bin/env node
// Connect-to-first-byte latency through Switchyard, with and without the connection-pool plugin,
// in one run (plugins/connection-pool/README.md quotes it).
//
//   npm run build && node bench/connect-latency.js [--n 3000] [--greeting-delay 2] [--node <path>]
//
// Processes: one for the backends, one proxy with the pool, one without, and this one as the
// client, so no event loop measures itself. Samples alternate between the two proxies, the
// order swapped every sample (same conditions, same drift). Two workloads:
//   echo   client speaks first: connect, send 1 byte, time until the echo arrives.
//   greet  server speaks first: the backend greets `--greeting-delay` ms after accept (the work a
//          MySQL/SSH/SMTP server does before its first line); time until the first byte.
// Set SWITCHYARD_DIST to use another build than ./dist.
import { connect, createServer } from 'node:net';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { withCleanup } from './lib/cleanup.js';
import { request, waitForMessage } from './lib/ipc.js';
import { nodeBinary } from './lib/node-binary.js';
import { splitAddress } from './lib/ports.js';
import { start, stop } from './lib/procs.js';

const script = fileURLToPath(import.meta.url);
const repo = fileURLToPath(new URL('..', import.meta.url));
const dist = resolve(process.env.SWITCHYARD_DIST ?? resolve(repo, 'dist'));
const send = process.send?.bind(process);

const role = process.argv[2];
if (role === '--backends') await runBackends(Number(process.argv[3]));
else if (role === '--proxy') await runProxy(process.argv[3]);
else
  await main().catch((err) => {
    console.error(`connect-latency: ${err instanceof Error ? err.message : err}`);
    process.exit(1);
  });

async function main() {
  const { values } = parseArgs({
    options: {
      n: { type: 'string', default: '3000' },
      warmup: { type: 'string', default: '300' },
      'greeting-delay': { type: 'string', default: '2' },
      'min-idle': { type: 'string', default: '4' },
      node: { type: 'string' },
    },
  });
  const n = Number(values.n);
  const warmup = Number(values.warmup);
  if (!Number.isInteger(n) || n < 1) throw new Error('--n must be a positive whole number');
  if (!Number.isInteger(warmup) || warmup < 0) throw new Error('--warmup must be a whole number');
  const node = nodeBinary(values.node);

  await withCleanup(async () => {
    // The backends stay on this Node: only the proxies run on --node.
    const backends = start(process.execPath, [script, '--backends', values['greeting-delay']], {
      name: 'backends',
      ipc: true,
    });
    const { echo, greet } = await waitForMessage(backends, 'ready', 15_000);
    /** @param {boolean} pool */
    const yaml = (pool) => `
connect_timeout: 2s
services:
  echo:
    listen: 127.0.0.1:0
    backends: [{ address: ${echo} }]
    plugins: ${pool ? `{ connection-pool: { min_idle: ${values['min-idle']} } }` : '{}'}
  greet:
    listen: 127.0.0.1:0
    backends: [{ address: ${greet} }]
    plugins: ${pool ? `{ connection-pool: { min_idle: ${values['min-idle']} } }` : '{}'}
`;
    const pooled = start(node.path, [script, '--proxy', yaml(true)], { name: 'proxy with pool', ipc: true });
    const direct = start(node.path, [script, '--proxy', yaml(false)], { name: 'proxy without', ipc: true });
    /** @type {Record<'pool' | 'direct', Record<'echo' | 'greet', string>>} */
    const addresses = {
      pool: await waitForMessage(pooled, 'ready', 30_000),
      direct: await waitForMessage(direct, 'ready', 30_000),
    };

    const rows = [];
    for (const workload of /** @type {const} */ (['echo', 'greet'])) {
      /** @type {Record<'pool' | 'direct', number[]>} */
      const samples = { pool: [], direct: [] };
      for (let i = 0; i < warmup + n; i++) {
        /** @type {('pool' | 'direct')[]} */
        const order = i % 2 === 0 ? ['pool', 'direct'] : ['direct', 'pool'];
        for (const mode of order) {
          const us = await firstByte(addresses[mode][workload], workload === 'echo');
          if (i >= warmup) samples[mode].push(us);
        }
      }
      const stats = await request(pooled, { type: 'stats' }, 'stats', 10_000);
      const s = stats[workload][0];
      for (const mode of /** @type {const} */ (['direct', 'pool'])) {
        rows.push({
          workload,
          mode,
          ...summary(samples[mode]),
          hits: mode === 'pool' ? `${s.hits}/${s.hits + s.misses}` : '',
        });
      }
    }

    console.log(
      `\nconnect-to-first-byte through the proxy, µs (proxies on Node ${node.version}, 1 round of ` +
        `n=${n} samples per row after ${warmup} warm-up, pool and direct alternating, loopback)`,
    );
    console.log(
      `greet: backend greets ${values['greeting-delay']} ms after accept; pool min_idle ${values['min-idle']}\n`,
    );
    const head = ['workload', 'mode', 'p50', 'p90', 'p99', 'mean', 'pool hits'];
    const lines = rows.map((r) => [r.workload, r.mode, r.p50, r.p90, r.p99, r.mean, r.hits].map(String));
    const width = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
    /** @param {string[]} cells */
    const fmt = (cells) =>
      cells.map((c, i) => (i < 2 ? c.padEnd(width[i]) : c.padStart(width[i]))).join('  ');
    console.log(fmt(head));
    for (const l of lines) console.log(fmt(l));

    // Gracefully (the proxies close their pools); withCleanup kills whatever is left.
    await Promise.all([pooled, direct, backends].map((p) => stop(p)));
  });
}

/**
 * µs from connect() to the first byte back.
 * @param {string} address
 * @param {boolean} speakFirst
 * @returns {Promise<number>}
 */
function firstByte(address, speakFirst) {
  return new Promise((resolveP, reject) => {
    const t0 = process.hrtime.bigint();
    const socket = connect({ ...splitAddress(address), noDelay: true });
    socket.once('connect', () => {
      if (speakFirst) socket.write('x');
    });
    socket.once('data', () => {
      const us = Number(process.hrtime.bigint() - t0) / 1000;
      socket.destroy();
      resolveP(us);
    });
    socket.once('error', reject);
  });
}

/** @param {number[]} values */
function summary(values) {
  const v = [...values].sort((a, b) => a - b);
  const at = (/** @type {number} */ q) => v[Math.min(v.length - 1, Math.floor(q * v.length))].toFixed(0);
  return {
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    mean: (v.reduce((a, b) => a + b, 0) / v.length).toFixed(0),
  };
}

/** @param {number} greetingDelay ms after accept */
async function runBackends(greetingDelay) {
  /**
   * @param {(s: import('node:net').Socket) => void} onConnection
   * @returns {Promise<string>}
   */
  const listen = (onConnection) =>
    new Promise((ok) => {
      const server = createServer({ noDelay: true }, (s) => {
        s.on('error', () => {});
        onConnection(s);
      });
      server.listen(0, '127.0.0.1', () =>
        ok(`127.0.0.1:${/** @type {import('node:net').AddressInfo} */ (server.address()).port}`),
      );
    });
  const echo = await listen((s) => s.pipe(s));
  const greet = await listen((s) => {
    s.resume();
    if (greetingDelay === 0) {
      s.write('220 ready\r\n'); // setTimeout(0) would wait 1 ms
      return;
    }
    const timer = setTimeout(() => s.write('220 ready\r\n'), greetingDelay);
    s.on('close', () => clearTimeout(timer));
  });
  send?.({ type: 'ready', echo, greet });
  process.on('disconnect', () => process.exit(0));
}

/** @param {string} yaml */
async function runProxy(yaml) {
  const { loadConfigText, Runtime } = await import(pathToFileURL(resolve(dist, 'core/index.js')).href);
  const { pino } = await import('pino');
  const config = await loadConfigText(yaml, 'bench.yaml', { baseDir: repo });
  const runtime = await Runtime.create(config, pino({ level: 'warn' }));
  await runtime.start();
  /** @param {string} name */
  const address = (name) => runtime.service(name).addresses()[0];
  // Let the pools fill before the first sample.
  await new Promise((r) => setTimeout(r, 300));
  send?.({ type: 'ready', echo: address('echo'), greet: address('greet') });
  process.on('message', (/** @type {any} */ m) => {
    if (m?.type !== 'stats') return;
    /** @param {string} name */
    const stats = (name) => runtime.service(name).use('connection-pool')?.stats() ?? [];
    send?.({ type: 'stats', id: m.id, echo: stats('echo'), greet: stats('greet') });
  });
  const exit = async () => {
    await runtime.stop(0);
    process.exit(0);
  };
  process.on('SIGTERM', exit);
  process.on('disconnect', exit);
}
