#!/usr/bin/env node
// Connect-to-first-byte latency through Switchyard, with and without connection-pool, in one run.
//
//   npm run build && node plugins/connection-pool/bench-connect-latency.mjs [--n 3000] [--greeting-delay 2]
//
// Processes: one for the backends, one proxy with the pool, one without, and this one as the
// client, so no event loop measures itself. Samples alternate between the two proxies (same
// conditions, same drift). Two workloads:
//   echo   client speaks first: connect, send 1 byte, time until the echo arrives.
//   greet  server speaks first: the backend greets `--greeting-delay` ms after accept (the work a
//          MySQL/SSH/SMTP server does before its first line); time until the first byte.
// Set SWITCHYARD_DIST to use another build than ./dist.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const dist = resolve(process.env.SWITCHYARD_DIST ?? resolve(repo, 'dist'));

const role = process.argv[2];
if (role === '--backends') await runBackends(Number(process.argv[3]));
else if (role === '--proxy') await runProxy(process.argv[3]);
else await main();

async function main() {
  const { values } = parseArgs({
    options: {
      n: { type: 'string', default: '3000' },
      warmup: { type: 'string', default: '300' },
      'greeting-delay': { type: 'string', default: '2' },
      'min-idle': { type: 'string', default: '4' },
    },
  });
  const n = Number(values.n);
  const warmup = Number(values.warmup);

  const backends = await child(['--backends', values['greeting-delay']]);
  const { echo, greet } = backends.ready;
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
  const pooled = await child(['--proxy', yaml(true)]);
  const direct = await child(['--proxy', yaml(false)]);

  const rows = [];
  for (const workload of ['echo', 'greet']) {
    const samples = { pool: [], direct: [] };
    for (let i = 0; i < warmup + n; i++) {
      const order = i % 2 === 0 ? ['pool', 'direct'] : ['direct', 'pool'];
      for (const mode of order) {
        const address = (mode === 'pool' ? pooled : direct).ready[workload];
        const us = await firstByte(address, workload === 'echo');
        if (i >= warmup) samples[mode].push(us);
      }
    }
    const stats = await pooled.ask('stats');
    const s = stats[workload][0];
    for (const mode of ['direct', 'pool']) {
      rows.push({
        workload,
        mode,
        ...summary(samples[mode]),
        hits: mode === 'pool' ? `${s.hits}/${s.hits + s.misses}` : '',
      });
    }
  }

  console.log(
    `\nconnect-to-first-byte through the proxy, µs (n=${n} per row, loopback, node ${process.version})`,
  );
  console.log(
    `greet: backend greets ${values['greeting-delay']} ms after accept; pool min_idle ${values['min-idle']}\n`,
  );
  const head = ['workload', 'mode', 'p50', 'p90', 'p99', 'mean', 'pool hits'];
  const lines = rows.map((r) => [r.workload, r.mode, r.p50, r.p90, r.p99, r.mean, r.hits].map(String));
  const width = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells) => cells.map((c, i) => (i < 2 ? c.padEnd(width[i]) : c.padStart(width[i]))).join('  ');
  console.log(fmt(head));
  for (const l of lines) console.log(fmt(l));

  for (const c of [pooled, direct, backends]) await c.stop();
}

/** µs from connect() to the first byte back. */
function firstByte(address, speakFirst) {
  const i = address.lastIndexOf(':');
  return new Promise((resolveP, reject) => {
    const t0 = process.hrtime.bigint();
    const socket = connect({ host: address.slice(0, i), port: Number(address.slice(i + 1)), noDelay: true });
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

function summary(values) {
  const v = [...values].sort((a, b) => a - b);
  const at = (q) => v[Math.min(v.length - 1, Math.floor(q * v.length))].toFixed(0);
  return {
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    mean: (v.reduce((a, b) => a + b, 0) / v.length).toFixed(0),
  };
}

/** Forks this file in a role; resolves once it reported `ready`. */
async function child(args) {
  const proc = fork(fileURLToPath(import.meta.url), args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [ready] = await once(proc, 'message');
  return {
    ready,
    async ask(what) {
      proc.send(what);
      const [answer] = await once(proc, 'message');
      return answer;
    },
    async stop() {
      proc.send('stop');
      await once(proc, 'exit');
    },
  };
}

async function runBackends(greetingDelay) {
  const listen = (onConnection) =>
    new Promise((ok) => {
      const server = createServer({ noDelay: true }, (s) => {
        s.on('error', () => {});
        onConnection(s);
      });
      server.listen(0, '127.0.0.1', () => ok(`127.0.0.1:${server.address().port}`));
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
  process.send({ echo, greet });
  process.on('message', (m) => {
    if (m === 'stop') process.exit(0);
  });
}

async function runProxy(yaml) {
  const { loadConfigText, Runtime } = await import(pathToFileURL(resolve(dist, 'core/index.js')).href);
  const { pino } = await import('pino');
  const config = await loadConfigText(yaml, 'bench.yaml', { baseDir: repo });
  const runtime = await Runtime.create(config, pino({ level: 'warn' }));
  await runtime.start();
  const address = (name) => runtime.service(name).addresses()[0];
  // Let the pools fill before the first sample.
  await new Promise((r) => setTimeout(r, 300));
  process.send({ echo: address('echo'), greet: address('greet') });
  process.on('message', async (m) => {
    if (m === 'stats') {
      const stats = (name) => runtime.service(name).use('connection-pool')?.stats() ?? [];
      process.send({ echo: stats('echo'), greet: stats('greet') });
    } else if (m === 'stop') {
      await runtime.stop(0);
      process.exit(0);
    }
  });
}
