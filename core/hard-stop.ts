import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';

/** `stop_grace` when the config does not say. */
export const DEFAULT_STOP_GRACE = 10_000;

/**
 * The watchdog: a thread that sleeps until the deadline and then kills the process. It needs
 * nothing from the main thread, so it also ends a process whose main thread is stuck outside
 * the event loop (a log write blocked on a pipe nobody reads, a futex wait) where no timer of
 * the main thread can fire. SIGKILL: the only signal nothing in the process can hold up.
 */
const WATCHDOG = `
const { workerData } = require('node:worker_threads');
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, workerData.ms);
process.kill(workerData.pid, 'SIGKILL');
`;

/**
 * Bounds a stop that has begun, as HAProxy's `hard-stop-after` does: at `deadlineMs` from now
 * the process logs one line, runs `onExpire` (a cluster primary kills its workers) and exits 1,
 * whatever it was waiting for (sessions, a plugin's stop hook, a log destination). If even that
 * cannot run — the main thread is blocked — a watchdog thread kills the process `graceMs` later.
 * Both are unref'd: a stop that finishes in time exits as usual.
 */
export function armHardStop(deadlineMs: number, graceMs: number, log: Logger, onExpire?: () => void): void {
  const timer = setTimeout(() => {
    try {
      log.error(
        { afterMs: deadlineMs },
        'stop did not finish within drain_timeout + stop_grace: exiting now (sessions still open are cut)',
      );
      onExpire?.();
    } finally {
      process.exit(1);
    }
  }, deadlineMs);
  timer.unref();
  try {
    const watchdog = new Worker(WATCHDOG, {
      eval: true,
      workerData: { ms: deadlineMs + Math.max(1000, graceMs), pid: process.pid },
      // A small thread: it only sleeps.
      resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 1 },
    });
    watchdog.on('error', (err) => log.warn({ err: err.message }, 'stop watchdog thread failed'));
    watchdog.unref();
  } catch (err) {
    // Out of descriptors or memory: the main thread's timer above is what is left.
    log.warn({ err: (err as Error).message }, 'stop watchdog thread could not start');
  }
}
