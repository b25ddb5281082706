// The three workloads of the benchmark. Each runs an unmodified standard client against a port
// and returns its headline figure plus the amount of work done, to divide CPU time by.
import { run, start, tail } from './procs.js';

/**
 * @typedef {object} Result
 * @property {number} value     headline figure, higher is better (in `unit`)
 * @property {number} work      units of work done (bytes, requests, connections)
 * @property {Record<string, number>} [extra]  latency percentiles and the like
 *
 * @typedef {object} Workload
 * @property {string} name
 * @property {string} label
 * @property {'iperf3' | 'redis'} backend
 * @property {string} unit              of `value`
 * @property {string} cpuUnit           CPU cost of the proxy per unit of work, as printed
 * @property {number} cpuScale          multiply CPU seconds / work by this to get `cpuUnit`
 * @property {(quick: boolean) => string} describe  the client command, for the report
 * @property {(port: number, quick: boolean) => Promise<Result>} run
 * @property {(port: number) => Promise<unknown>} warmup  a short run, so JIT warm-up is not measured
 */

/** @type {Workload} */
export const bulk = {
  name: 'bulk',
  label: 'bulk throughput, 1 stream',
  backend: 'iperf3',
  unit: 'Gbit/s',
  cpuUnit: 'CPU ms/GB',
  cpuScale: 1e3 * 1e9,
  describe: (quick) => `iperf3 -c 127.0.0.1 -p PORT -t ${quick ? 2 : 4} -J`,
  async run(port, quick) {
    return iperf3(port, quick ? 2 : 4);
  },
  warmup: (port) => iperf3(port, 1),
};

/**
 * @param {number} port
 * @param {number} seconds
 * @returns {Promise<Result>}
 */
async function iperf3(port, seconds) {
  let stdout;
  try {
    ({ stdout } = await run(
      'iperf3',
      ['-c', '127.0.0.1', '-p', String(port), '-t', String(seconds), '-J'],
      (seconds + 20) * 1000,
    ));
  } catch (err) {
    // -J reports failures inside the JSON, on stdout.
    const reason = /"error":\s*"([^"]*)"/.exec(String(/** @type {Error} */ (err).message))?.[1];
    throw reason ? new Error(`iperf3: ${reason}`) : err;
  }
  const report = JSON.parse(stdout);
  if (report.error) throw new Error(`iperf3: ${report.error}`);
  const received = report.end.sum_received;
  return {
    value: received.bits_per_second / 1e9,
    work: received.bytes,
    extra: { retransmits: report.end.sum_sent.retransmits ?? 0 },
  };
}

/** @type {Workload} */
export const requests = {
  name: 'requests',
  label: 'small request/response, 50 clients',
  backend: 'redis',
  unit: 'req/s',
  cpuUnit: 'CPU µs/req',
  cpuScale: 1e6,
  describe: (quick) => `redis-benchmark -t ping_inline -n ${quick ? 50000 : 200000} -c 50 --csv`,
  run: (port, quick) => redisBenchmark(port, quick ? 50000 : 200000, 50, true),
  warmup: (port) => redisBenchmark(port, 20000, 50, true),
};

/** @type {Workload} */
export const churn = {
  name: 'churn',
  label: 'new connection per request, 20 clients',
  backend: 'redis',
  unit: 'conn/s',
  cpuUnit: 'CPU µs/conn',
  cpuScale: 1e6,
  describe: (quick) => `redis-benchmark -t ping_inline -n ${quick ? 10000 : 30000} -c 20 -k 0 --csv`,
  run: (port, quick) => redisBenchmark(port, quick ? 10000 : 30000, 20, false),
  warmup: (port) => redisBenchmark(port, 3000, 20, false),
};

/**
 * redis-benchmark never gives up on a refused or reset connection (it spins at full CPU), so
 * watch its stderr for connection errors and stop it at the first one.
 * @param {number} port
 * @param {number} n          requests
 * @param {number} clients
 * @param {boolean} keepAlive false: a new connection per request (-k 0)
 * @returns {Promise<Result>}
 */
async function redisBenchmark(port, n, clients, keepAlive) {
  const args = [
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    '-t',
    'ping_inline',
    '-n',
    String(n),
    '-c',
    String(clients),
  ];
  if (!keepAlive) args.push('-k', '0');
  args.push('--csv');
  const proc = start('redis-benchmark', args);
  const timeoutMs = 120_000;
  let failure = null;
  const watch = setInterval(() => {
    const error = /(Could not connect[^\n]*|Error[^\n]*|Connection reset[^\n]*)/.exec(proc.stderr);
    if (error) {
      failure = error[1];
      proc.child.kill('SIGKILL');
    }
  }, 100);
  const timer = setTimeout(() => {
    failure = `timed out after ${timeoutMs} ms`;
    proc.child.kill('SIGKILL');
  }, timeoutMs);
  const { code } = await proc.exited;
  clearInterval(watch);
  clearTimeout(timer);
  if (failure !== null || code !== 0) {
    throw new Error(`redis-benchmark: ${failure ?? `exit ${code}`}\n${tail(proc.stderr)}`);
  }
  const row = proc.stdout
    .split('\n')
    .map((line) => line.replaceAll('"', '').split(','))
    .find((cells) => cells[0] === 'PING_INLINE');
  if (!row) throw new Error(`redis-benchmark: no PING_INLINE row in\n${tail(proc.stdout)}`);
  const [, rps, avg, , p50, , p99] = row.map(Number);
  return { value: rps, work: n, extra: { avgMs: avg, p50Ms: p50, p99Ms: p99 } };
}

export const allWorkloads = [bulk, requests, churn];
