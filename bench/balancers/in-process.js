// Child (run on the Node under test): the cost of one `select` at 10 and 1,000 backends, the
// cost of rebuilding a consistent-hash table, and the share of keys remapped when one backend
// of 10 leaves and when it returns. Everything goes through a real service's `select` hook,
// as the core calls it; the backends are never dialled. Prints one JSON line.
import { pino } from 'pino';
import { loadConfigText } from '../../dist/core/config/load.js';
import { Runtime } from '../../dist/core/runtime.js';
import { buildTable } from '../../dist/plugins/consistent-hash/table.js';
import { balancers } from './balancers.js';

const KEYS = 10_000;
/** Synthetic clients: distinct IPs and ports (a plain property here; a real session asks the kernel once). */
const sessions = Array.from({ length: KEYS }, (_, i) => ({
  remoteAddress: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
  remotePort: 1024 + (i % 60000),
}));
const address = (i) => `127.3.${(i >> 8) & 255}.${i & 255}:7000`;

async function service(balancer, n) {
  const backends = Array.from(
    { length: n },
    (_, i) => `  - { address: "${address(i)}", weight: ${balancer.weights?.(i) ?? 1} }`,
  );
  const yaml = `listen: 127.0.0.1:0\nbackends:\n${backends.join('\n')}\nplugins:\n  ${balancer.plugins}\n`;
  const config = await loadConfigText(yaml, 'bench.yaml', { baseDir: process.cwd() });
  const runtime = await Runtime.create(config, pino({ level: 'silent' }));
  await runtime.start();
  return { runtime, service: runtime.defaultService };
}

/** ns per call: best of `rounds` timed runs of ~`ms` each (the machine is shared: best is the cost). */
function timeSelect(svc, candidates, rounds = 5, ms = 150) {
  const select = svc.hooks.select;
  let sink = 0;
  let iterations = 1000;
  // Calibrate to ~ms per round (and warm the JIT).
  for (;;) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) sink ^= select.call(candidates, sessions[i % KEYS]).port;
    const took = Number(process.hrtime.bigint() - t) / 1e6;
    if (took > ms / 4) {
      iterations = Math.max(1000, Math.round((iterations * ms) / took));
      break;
    }
    iterations *= 4;
  }
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < rounds; r++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) sink ^= select.call(candidates, sessions[i % KEYS]).port;
    best = Math.min(best, Number(process.hrtime.bigint() - t) / iterations);
  }
  if (sink === 0.5) console.error(sink); // keeps the loop from being optimised away
  return best;
}

function mapping(svc) {
  const up = svc.backends.up;
  return sessions.map((s) => svc.hooks.select.call(up, s).address);
}

function share(a, b) {
  let moved = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) moved++;
  return moved / a.length;
}

async function remap(balancer) {
  const { runtime, service: svc } = await service(balancer, 10);
  try {
    const before = mapping(svc);
    const leaving = address(3);
    const own = before.filter((a) => a === leaving).length / KEYS;
    const spec = svc.backends.get(leaving).spec;
    svc.backends.remove(leaving, { drainTimeout: 0 });
    const gone = mapping(svc);
    svc.backends.add(spec);
    const back = mapping(svc);
    return { own, leaves: share(before, gone), returns: share(before, back) };
  } finally {
    await runtime.stop(0);
  }
}

async function cost(balancer, n) {
  const { runtime, service: svc } = await service(balancer, n);
  try {
    const up = svc.backends.up;
    // What a candidate filter hands over while one backend is down: a copy without it.
    const filtered = up.filter((_, i) => i !== 1);
    return { all: timeSelect(svc, up), filtered: timeSelect(svc, filtered) };
  } finally {
    await runtime.stop(0);
  }
}

function rebuildMs(algorithm, n) {
  const up = Array.from({ length: n }, (_, i) => ({ address: address(i), effectiveWeight: 1 }));
  const settings = { algorithm, tableSize: 65537, ringPoints: 160 };
  buildTable(up, settings);
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < 3; r++) {
    const t = process.hrtime.bigint();
    buildTable(up, settings);
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e6);
  }
  return best;
}

const sizes = (process.argv[2] ?? '10,1000').split(',').map(Number);
const results = [];
for (const balancer of balancers) {
  const row = { name: balancer.name, select: {}, remap: await remap(balancer) };
  for (const n of sizes) row.select[n] = await cost(balancer, n);
  results.push(row);
}
const rebuild = {};
for (const algorithm of ['maglev', 'ring'])
  for (const n of sizes) rebuild[`${algorithm} ${n}`] = rebuildMs(algorithm, n);
process.stdout.write(`${JSON.stringify({ node: process.version, keys: KEYS, results, rebuild })}\n`);
