// Child (run on the Node under test, `--node`): the cost of one `select` at 10 and 1,000
// backends, the cost of rebuilding a consistent-hash table, and the share of keys remapped when
// one backend of 10 leaves and when it returns. Everything goes through a real service's
// `select` hook, as the core calls it; the backends are never dialled. Sends
// { type: 'result', ... } over IPC. Set SWITCHYARD_DIST to use another build than ./dist.
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { balancers } from './balancers.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const dist = resolve(process.env.SWITCHYARD_DIST ?? resolve(repo, 'dist'));
/** @param {string} path */
const load = (path) => import(pathToFileURL(resolve(dist, path)).href);
const { loadConfigText, Runtime } = await load('core/index.js');
const { buildTable } = await load('plugins/consistent-hash/table.js');

/** @typedef {import('./balancers.js').Balancer} Balancer */
/** @typedef {{ address: string, port: number }} BackendLike */
/**
 * @typedef {object} ServiceLike  what this bench touches of a Service
 * @property {{ select: { call(candidates: BackendLike[], session: object): BackendLike } }} hooks
 * @property {{ up: BackendLike[], get(address: string): { spec: object }, remove(address: string, o: object): void, add(spec: object): void }} backends
 */

const KEYS = 10_000;
/**
 * Synthetic clients: distinct IPs and ports. A plain property here (a real session asks the
 * kernel once), flat strings as the kernel's answers are (a template literal is a rope).
 */
const sessions = Array.from({ length: KEYS }, (_, i) => ({
  remoteAddress: Buffer.from(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`).toString('latin1'),
  remotePort: 1024 + (i % 60000),
}));
/** @param {number} i */
const address = (i) => `127.3.${(i >> 8) & 255}.${i & 255}:7000`;

/**
 * @param {Balancer} balancer
 * @param {number} n
 * @returns {Promise<{ runtime: { stop(ms: number): Promise<void> }, service: ServiceLike }>}
 */
async function service(balancer, n) {
  const backends = Array.from(
    { length: n },
    (_, i) => `  - { address: "${address(i)}", weight: ${balancer.weights?.(i) ?? 1} }`,
  );
  const yaml = `listen: 127.0.0.1:0\nbackends:\n${backends.join('\n')}\nplugins:\n  ${balancer.plugins}\n`;
  const config = await loadConfigText(yaml, 'bench.yaml', { baseDir: repo });
  const runtime = await Runtime.create(config, pino({ level: 'silent' }));
  await runtime.start();
  return { runtime, service: runtime.defaultService };
}

/**
 * Runs `select` over the rotating synthetic sessions; returns ns per call.
 * @param {ServiceLike} svc
 * @param {BackendLike[]} candidates
 * @param {number} iterations
 */
function timeSelect(svc, candidates, iterations) {
  const select = svc.hooks.select;
  let sink = 0;
  const t = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) sink ^= select.call(candidates, sessions[i % KEYS]).port;
  const ns = Number(process.hrtime.bigint() - t) / iterations;
  if (sink === 0.5) console.error(sink); // keeps the loop from being optimised away
  return ns;
}

/**
 * Iterations that take about `ms` (and warm the JIT).
 * @param {ServiceLike} svc
 * @param {BackendLike[]} candidates
 * @param {number} ms
 */
function calibrate(svc, candidates, ms) {
  let iterations = 500;
  for (;;) {
    const took = (timeSelect(svc, candidates, iterations) * iterations) / 1e6;
    if (took > ms / 4) return Math.max(500, Math.round((iterations * ms) / took));
    iterations *= 4;
  }
}

/** @param {ServiceLike} svc */
function mapping(svc) {
  const up = svc.backends.up;
  return sessions.map((s) => svc.hooks.select.call(up, s).address);
}

/**
 * @param {string[]} a
 * @param {string[]} b
 */
function share(a, b) {
  let moved = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) moved++;
  return moved / a.length;
}

/** @param {Balancer} balancer */
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

/**
 * @typedef {object} CostCase
 * @property {string} name
 * @property {number} n
 * @property {'all' | 'filtered'} kind
 * @property {ServiceLike} svc
 * @property {BackendLike[]} candidates
 * @property {number} iterations
 * @property {number} best
 */

/**
 * Every (balancer, size, all | filtered) case is timed once per round, rounds interleaving the
 * cases, and the best round counts: on a shared machine a burst of load then spoils one round
 * of every case rather than every round of one case.
 * @param {number[]} sizes
 */
async function costs(sizes, rounds = 7, ms = 60) {
  /** @type {CostCase[]} */
  const cases = [];
  const runtimes = [];
  for (const balancer of balancers)
    for (const n of sizes) {
      const { runtime, service: svc } = await service(balancer, n);
      runtimes.push(runtime);
      const up = svc.backends.up;
      // What a candidate filter hands over while one backend is down: a copy without it.
      const filtered = up.filter((_, i) => i !== 1);
      for (const [kind, candidates] of /** @type {const} */ ([
        ['all', up],
        ['filtered', filtered],
      ]))
        cases.push({
          name: balancer.name,
          n,
          kind,
          svc,
          candidates,
          iterations: 0,
          best: Number.POSITIVE_INFINITY,
        });
    }
  for (const c of cases) c.iterations = calibrate(c.svc, c.candidates, ms);
  for (let r = 0; r < rounds; r++)
    for (const c of cases) c.best = Math.min(c.best, timeSelect(c.svc, c.candidates, c.iterations));
  await Promise.all(runtimes.map((rt) => rt.stop(0)));
  return cases;
}

/**
 * Best of 3 builds of a table, ms.
 * @param {'maglev' | 'ring'} algorithm
 * @param {number} n
 */
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
/** @type {Array<{ name: string, remap: { own: number, leaves: number, returns: number }, select: Record<number, Record<string, number>> }>} */
const results = [];
for (const balancer of balancers)
  results.push({ name: balancer.name, select: {}, remap: await remap(balancer) });
for (const c of await costs(sizes)) {
  const row = results.find((r) => r.name === c.name);
  if (row === undefined) continue;
  row.select[c.n] ??= {};
  row.select[c.n][c.kind] = c.best;
}
/** @type {Record<string, number>} */
const rebuild = {};
for (const algorithm of /** @type {const} */ (['maglev', 'ring']))
  for (const n of sizes) rebuild[`${algorithm} ${n}`] = rebuildMs(algorithm, n);
process.send?.({ type: 'result', node: process.version, keys: KEYS, results, rebuild });
process.disconnect?.();
