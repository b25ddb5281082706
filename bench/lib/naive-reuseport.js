// N copies of the naive proxy (naive-proxy.js) sharing one port with SO_REUSEPORT: the kernel
// spreads connections over them, as it does over Switchyard's workers with
// `scheduling: reuseport`. What Node itself allows with several processes and no code of ours
// in the data path: the bar for `--workers N`. Needs Node >= 22.12 (`reusePort`).
//   node naive-reuseport.js '{"processes":2,"backends":[6379],"noDelay":false}'
// Prints "listening 127.0.0.1:<port>" once every copy listens; ends the copies when it ends.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** @type {{ processes: number, backends: number[], noDelay?: boolean }} */
const { processes, backends, noDelay = false } = JSON.parse(process.argv[2] ?? '');
const script = fileURLToPath(new URL('naive-proxy.js', import.meta.url));
/** @type {import('node:child_process').ChildProcess[]} */
const children = [];

/**
 * One copy on `port` (0: let the kernel pick); resolves with the port it bound.
 * @param {number} port
 * @returns {Promise<number>}
 */
function startCopy(port) {
  const spec = JSON.stringify({ listen: ['127.0.0.1'], backends, noDelay, port, reusePort: true });
  const child = fork(script, [spec], {
    execArgv: process.execArgv,
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (/** @type {Buffer} */ d) => {
      out += d;
      const m = /listening [^\s]+:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`naive copy exited (${code}) before listening`)));
  });
}

const endAll = () => {
  for (const c of children) c.kill('SIGTERM');
};
process.on('SIGTERM', () => {
  endAll();
  process.exit(0);
});
process.on('exit', endAll);

const port = await startCopy(0);
await Promise.all(Array.from({ length: processes - 1 }, () => startCopy(port)));
console.log(`listening 127.0.0.1:${port}`);
