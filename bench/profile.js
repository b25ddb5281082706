// Where Switchyard spends its CPU under a workload: runs the proxy under `node --cpu-prof`, drives
// the workload through it, stops it gracefully (so V8 writes the profile) and prints the top
// self-time functions and files. `--target naive` profiles the baseline the same way.
//
//   npm run build && node bench/profile.js --only requests
//   node bench/profile.js --summarize path/to/file.cpuprofile
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { startIperf3, startRedis } from './lib/backends.js';
import { withCleanup } from './lib/cleanup.js';
import { summarize, summaryMarkdown } from './lib/cpuprofile.js';
import { NODE_OPTION_HELP, nodeBinary } from './lib/node-binary.js';
import { cpuSeconds } from './lib/proc-stats.js';
import { naive, naiveNoDelay, switchyard } from './lib/targets.js';
import { allWorkloads } from './lib/workloads.js';

const program = new Command()
  .name('bench/profile.js')
  .description('CPU-profile a proxy process under one or more benchmark workloads.')
  .option(
    '-o, --only <workloads>',
    'comma-separated workloads',
    (/** @type {string} */ t) => t.split(','),
    allWorkloads.map((w) => w.name),
  )
  .addOption(
    new Option('--target <target>', 'proxy to profile')
      .choices(['switchyard', 'naive', 'naive-nodelay'])
      .default('switchyard'),
  )
  .option('-q, --quick', 'shorter runs')
  .option('--top <n>', 'rows per table', Number, 20)
  .option('--summarize <file>', 'only summarize an existing .cpuprofile')
  .option('--node <path>', NODE_OPTION_HELP);
program.parse();
const opts = program.opts();

if (opts.summarize) {
  console.log(summaryMarkdown(summarize(JSON.parse(readFileSync(opts.summarize, 'utf8')), opts.top)));
  process.exit(0);
}

const workloads = allWorkloads.filter((w) => opts.only.includes(w.name));
if (workloads.length === 0) program.error(`no such workload: ${opts.only.join(', ')}`);
/** @type {Record<string, import('./lib/targets.js').Target>} */
const profilable = { switchyard, naive, 'naive-nodelay': naiveNoDelay };
const target = profilable[opts.target];
const node = (() => {
  try {
    return nodeBinary(opts.node);
  } catch (err) {
    return program.error(/** @type {Error} */ (err).message);
  }
})();
const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(resultsDir, { recursive: true });
const stamp = new Date().toISOString().replaceAll(':', '-').replace(/\..*/, '');

await withCleanup(async (dir) => {
  for (const workload of workloads) {
    const profDir = join(dir, `prof-${workload.name}`);
    mkdirSync(profDir);
    const backend = workload.backend === 'iperf3' ? await startIperf3() : await startRedis();
    /** @type {import('./lib/targets.js').RunningTarget | undefined} */
    let proxy;
    try {
      proxy = await target.start(backend.port, dir, { cpuProf: profDir, node: node.path });
      await workload.warmup(proxy.port);
      const before = cpuSeconds(proxy.pid);
      const fromUs = Number(process.hrtime.bigint() / 1000n);
      const result = await workload.run(proxy.port, Boolean(opts.quick));
      const toUs = Number(process.hrtime.bigint() / 1000n);
      const after = cpuSeconds(proxy.pid);
      const cpu = before === null || after === null ? Number.NaN : after - before;
      // A long grace period: V8 writes the profile as the process exits.
      await proxy.stop(30_000);
      proxy = undefined;
      const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
      if (!file) throw new Error(`${target.name} wrote no .cpuprofile (did it exit gracefully?)`);
      const kept = join(resultsDir, `profile-${stamp}-${workload.name}-${target.name}.cpuprofile`);
      copyFileSync(join(profDir, file), kept);
      const summary = summarize(JSON.parse(readFileSync(kept, 'utf8')), opts.top, { fromUs, toUs });
      writeFileSync(kept.replace(/\.cpuprofile$/, '.summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
      console.log(
        `\n### ${target.label} under ${workload.label} (Node ${node.version}, 1 round)\n\n` +
          `\`${workload.describe(Boolean(opts.quick))}\`: ${result.value.toFixed(workload.unit === 'Gbit/s' ? 2 : 0)} ${workload.unit}, ` +
          `proxy CPU ${cpu.toFixed(2)} s = ${((cpu / result.work) * workload.cpuScale).toFixed(2)} ${workload.cpuUnit} ` +
          `(profiling adds overhead). Profile: ${kept}\n`,
      );
      console.log(summaryMarkdown(summary));
    } finally {
      await proxy?.stop();
      await backend.stop();
    }
  }
});
