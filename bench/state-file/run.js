// How long admin API changes take when admin-api keeps a state file: N backends added one by
// one (each call waits for its answer, as a script would), then N more from C clients at once.
// Every answer means the change is on disk, so this measures the cost of that guarantee.
//
//   npm run build && node bench/state-file/run.js [--count 4000] [--concurrency 32]
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { withCleanup } from '../lib/cleanup.js';
import { positiveInt } from '../lib/options.js';
import { freePort } from '../lib/ports.js';
import { start, stop, waitForOutput } from '../lib/procs.js';

const opts = new Command()
  .name('bench/state-file/run.js')
  .description('Time backend adds through the admin API with a state file (loopback only).')
  .option('-n, --count <n>', 'backends added in each phase', positiveInt, 4000)
  .option('-c, --concurrency <n>', 'clients at once in the second phase', positiveInt, 32)
  .option('--no-state-file', 'the same without a state file, for comparison')
  .parse()
  .opts();

const BIN = fileURLToPath(new URL('../../bin/switchyard.js', import.meta.url));

/**
 * @param {string} base
 * @param {string} address
 */
async function add(base, address) {
  const res = await fetch(`${base}/backends`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ address }),
  });
  if (res.status !== 201) throw new Error(`POST /backends ${address}: ${res.status} ${await res.text()}`);
  await res.arrayBuffer();
}

/** Backend addresses never dialled (no health check): 127.0.0.2..127.0.0.N spread over ports. */
const addressOf = (/** @type {number} */ i) =>
  `127.0.${1 + Math.floor(i / 60000)}.${2 + (i % 250)}:${1024 + Math.floor(i / 250)}`;

await withCleanup(async (dir) => {
  const adminPort = await freePort();
  const stateFile = join(dir, 'state.json');
  const config = join(dir, 'bench.yaml');
  writeFileSync(
    config,
    `listen: 127.0.0.1:0
backends: [{ address: "127.0.0.1:1" }]
log_level: warn
plugins:
  admin-api: { listen: "127.0.0.1:${adminPort}"${opts.stateFile ? `, state_file: "${stateFile}"` : ''} }
`,
  );
  const proc = start(process.execPath, [BIN, '--config', config, '--no-pretty', '--log-level', 'info']);
  await waitForOutput(proc, /switchyard started/);
  const base = `http://127.0.0.1:${adminPort}`;
  const n = opts.count;

  let t0 = performance.now();
  for (let i = 0; i < n; i++) await add(base, addressOf(i));
  const serial = performance.now() - t0;

  t0 = performance.now();
  let next = n;
  await Promise.all(
    Array.from({ length: opts.concurrency }, async () => {
      while (next < 2 * n) await add(base, addressOf(next++));
    }),
  );
  const parallel = performance.now() - t0;
  await stop(proc);

  const recorded = opts.stateFile
    ? JSON.parse(readFileSync(stateFile, 'utf8')).services.default.backends.length
    : undefined;
  const row = (/** @type {string} */ label, /** @type {number} */ ms) =>
    `| ${label} | ${(ms / 1000).toFixed(1)} s | ${((ms * 1000) / n).toFixed(0)} us | ${Math.round((n * 1000) / ms)}/s |`;
  process.stdout.write(
    [
      `state file: ${opts.stateFile ? 'yes' : 'no'}; ${n} adds per phase; node ${process.version}`,
      '| phase | total | per add | adds/s |',
      '|---|---|---|---|',
      row('one by one', serial),
      row(`${opts.concurrency} clients`, parallel),
      recorded === undefined
        ? ''
        : `backends in the state file after stop: ${recorded} (expected ${2 * n + 1})`,
      '',
    ].join('\n'),
  );
});
