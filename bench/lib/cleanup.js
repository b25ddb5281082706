// Runs a benchmark body with a scratch directory and the guarantee that no child process
// outlives it: normal end, thrown error, Ctrl-C or SIGTERM.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { killAll } from './procs.js';

/**
 * @template T
 * @param {(dir: string) => Promise<T>} body
 * @returns {Promise<T>}
 */
export async function withCleanup(body) {
  const dir = mkdtempSync(join(os.tmpdir(), 'switchyard-bench-'));
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  /** @param {NodeJS.Signals} signal */
  const onSignal = (signal) => {
    process.stderr.write(`\n${signal}: stopping every benchmark process\n`);
    killAll();
    removeDir();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  const onExit = () => {
    killAll();
    removeDir();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', onExit);
  try {
    return await body(dir);
  } finally {
    killAll();
    removeDir();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', onExit);
  }
}
