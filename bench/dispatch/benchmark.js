// redis-benchmark as the client: PING_INLINE, either a new connection per request (-k 0,
// connection churn) or persistent connections (-k 1).
import { killTree, spawnTracked } from './children.js';

/**
 * @returns {Promise<{ rps: number | null, seconds: number, error?: string }>}
 */
export function redisBenchmark(port, { keepalive, requests, clients = 50, timeoutMs = 60_000 }) {
  const args = ['-h', '127.0.0.1', '-p', String(port), '-c', String(clients), '-n', String(requests)];
  args.push('-k', keepalive ? '1' : '0', '-t', 'ping_inline', '-q');
  const started = process.hrtime.bigint();
  const child = spawnTracked('redis-benchmark', args);
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (c) => {
    out = (out + c).slice(-4096);
  });
  child.stderr.resume();
  return new Promise((resolve) => {
    const timer = setTimeout(() => killTree(child), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const match = /([\d.]+) requests per second/.exec(out.split('\r').pop());
      if (match !== null && code === 0) resolve({ rps: Number(match[1]), seconds });
      else
        resolve({ rps: null, seconds, error: signal === 'SIGKILL' ? 'timeout' : `exit ${code ?? signal}` });
    });
  });
}
