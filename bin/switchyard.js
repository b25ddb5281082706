#!/usr/bin/env node
import { main } from '../dist/core/cli.js';

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
