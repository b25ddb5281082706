// The primary's descriptor limit reached on purpose: the primary alone gets a low open-files
// limit (prlimit on its pid after the workers are forked), and a burst of connections arrives.
//   rr            node:cluster: libuv's EMFILE path accepts and closes, nothing is counted
//   socket        custom dispatch without the guard: the same, net.Server reports EMFILE errors
//   socket+guard  custom dispatch refusing (RST) at 90 % of the limit, counted
import { execFileSync } from 'node:child_process';
import { spawnTracked } from './children.js';
import { sampleFds } from './sampler.js';
import { startProxy } from './servers.js';

const CLIENT = new URL('./burst-client.js', import.meta.url).pathname;

function burst(port, total, concurrency) {
  return new Promise((resolve, reject) => {
    const child = spawnTracked(
      process.execPath,
      [CLIENT, String(port), String(total), String(concurrency), '5000'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout.on('data', (c) => {
      out += c;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('exit', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out));
      } catch {
        reject(new Error(`burst client: no result (${out.trim()})`));
      }
    });
  });
}

/** @returns {Promise<object[]>} one row per case */
export async function guardDemo(redisPort, { limit = 64, total = 3000, concurrency = 400 } = {}) {
  const cases = [
    { name: 'rr', mode: 'rr', args: [] },
    { name: 'socket, no guard', mode: 'socket', args: [] },
    { name: 'socket + guard 90%', mode: 'socket', args: ['--guard'] },
  ];
  const rows = [];
  for (const c of cases) {
    const proxy = await startProxy(c.mode, redisPort, c.args);
    try {
      execFileSync('prlimit', ['--pid', String(proxy.pid), `--nofile=${limit}:${limit}`]);
      await new Promise((r) => setTimeout(r, 400)); // the guard re-reads the limit every 250 ms
      const fds = sampleFds(proxy.pid, 2);
      const client = await burst(proxy.port, total, concurrency);
      const peakFds = fds.stop();
      const stats = await proxy.stats();
      // Is the primary still fine? One more connection must be served.
      const after = await burst(proxy.port, 1, 1);
      rows.push({ case: c.name, limit, ...client, peakFds, stats, servedAfter: after.ok === 1 });
    } finally {
      proxy.stop();
    }
  }
  return rows;
}
