#!/usr/bin/env node
import { reexecWithMallocTuning } from '../dist/core/malloc-tuning.js';

// A proxy start re-executes itself once with glibc's allocator tuned for socket buffers
// (dist/core/malloc-tuning.js says why), before anything else is loaded: same pid, same
// arguments. Other commands (validate, ctl, --help) move no traffic.
const command = process.argv[2];
const isStart =
  (command === undefined || command.startsWith('-')) &&
  !process.argv.slice(2).some((a) => ['-h', '--help', '-v', '--version'].includes(a));
if (isStart) {
  reexecWithMallocTuning();
  // The config is loaded in a thread of its own (dist/core/config/load-thread.js says why);
  // it boots while this thread imports the rest. A cluster worker gets its config from the
  // primary instead.
  const { default: cluster } = await import('node:cluster');
  if (!cluster.isWorker) (await import('../dist/core/config/load-thread.js')).prestartConfigThread();
}

const { main } = await import('../dist/core/cli.js');

// The stack of an unexpected error helps whoever debugs a plugin, and only them.
const debug = /(^|\s)(-l|--log-level)[=\s](debug|trace)(\s|$)/.test(process.argv.slice(2).join(' '));
let settled = false;

main(process.argv).then(
  () => {
    settled = true;
  },
  (err) => {
    settled = true;
    process.stderr.write(`switchyard: ${(debug ? err?.stack : err?.message) ?? err}\n`);
    process.exit(1);
  },
);

// Node ends a process whose event loop is empty even while a promise is pending (exit code 0);
// before it reports success for a start or a check that never finished, say so and fail.
process.on('beforeExit', () => {
  if (settled) return;
  process.stderr.write('switchyard: stopped before finishing: something it waited for will never happen\n');
  process.exit(1);
});
