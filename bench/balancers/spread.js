// The spread workload: closed-loop clients, one new connection per request, each from its own
// 127.2.x.y source address (so hashing on the client IP has many keys), through the proxy to
// five backends of unequal speed. Records connect-to-first-byte per session and which backend
// answered (the reply is its name).
import net from 'node:net';

/**
 * @typedef {object} SpreadResult
 * @property {number} sessions    completed in the measured window
 * @property {number} perSecond
 * @property {number} p50         ms, connect to first byte
 * @property {number} p99
 * @property {Record<string, number>} byBackend  sessions per backend name
 * @property {number} errors
 */

/**
 * One session from `localAddress`: connect, send a byte, wait for the reply.
 * @param {number} port
 * @param {string} localAddress
 * @returns {Promise<{ ok: false } | { ok: true, ms: number, name: string }>}
 */
function session(port, localAddress) {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    let reply = '';
    let first = 0n;
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    socket.setEncoding('utf8');
    socket.setTimeout(10_000, () => socket.destroy(new Error('timeout')));
    socket.on('connect', () => socket.write('x'));
    socket.on('data', (/** @type {string} */ chunk) => {
      if (first === 0n) first = process.hrtime.bigint();
      reply += chunk;
    });
    socket.on('error', () => {});
    socket.on('close', (hadError) => {
      if (hadError || first === 0n || !reply.endsWith('\n')) resolve({ ok: false });
      else resolve({ ok: true, ms: Number(first - t0) / 1e6, name: reply.trim() });
    });
  });
}

/**
 * @param {{ port: number, concurrency: number, durationMs: number, warmupMs: number }} o
 * @returns {Promise<SpreadResult>}
 */
export async function runSpread({ port, concurrency, durationMs, warmupMs }) {
  /** @type {number[]} */
  const latencies = [];
  /** @type {Record<string, number>} */
  const byBackend = {};
  let errors = 0;
  const measureFrom = Date.now() + warmupMs;
  const end = measureFrom + durationMs;

  /** @param {number} i */
  const loop = async (i) => {
    for (let j = 0; Date.now() < end; j++) {
      const r = await session(port, `127.2.${i & 255}.${(j % 64) + 1}`);
      if (Date.now() < measureFrom) continue;
      if (!r.ok) {
        errors++;
        continue;
      }
      latencies.push(r.ms);
      byBackend[r.name] = (byBackend[r.name] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, i) => loop(i)));
  latencies.sort((a, b) => a - b);
  /** @param {number} q */
  const at = (q) =>
    latencies.length === 0
      ? Number.NaN
      : latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  return {
    sessions: latencies.length,
    perSecond: latencies.length / (durationMs / 1000),
    p50: at(0.5),
    p99: at(0.99),
    byBackend,
    errors,
  };
}
