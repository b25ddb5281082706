// Child processes of a benchmark run: every one is tracked so that a normal end, an error,
// Ctrl-C or SIGTERM leave nothing running (see cleanup.js).
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * @typedef {object} Proc
 * @property {import('node:child_process').ChildProcess} child
 * @property {string} name        for messages
 * @property {string} stdout      last 64 KiB
 * @property {string} stderr      last 64 KiB
 * @property {boolean} ended      exited, or failed to spawn at all (e.g. ENOENT: then exitCode stays null)
 * @property {Promise<{ code: number | null, signal: NodeJS.Signals | null }>} exited
 *
 * @typedef {object} StartOptions
 * @property {string} [name]      for messages (default: the command line)
 * @property {string} [cwd]
 * @property {NodeJS.ProcessEnv} [env]
 * @property {boolean} [ipc]      an IPC channel (fd 3) besides the piped stdout and stderr
 * @property {boolean} [group]    the child leads a new process group, and every stop or kill
 *                                signals the whole group (a cluster primary and its workers)
 */

/** @type {Set<Proc>} */
const live = new Set();
/** Group leaders' pids until killed here: a group may outlive its leader (workers of a dead primary). */
const groupPids = new Set();

/**
 * Spawns a tracked child. Output is kept (last 64 KiB) for error messages and parsing.
 * @param {string} cmd
 * @param {string[]} args
 * @param {StartOptions} [options]
 * @returns {Proc}
 */
export function start(cmd, args, options = {}) {
  const { name = `${cmd} ${args.join(' ')}`, ipc = false, group = false, cwd, env } = options;
  const child = spawn(cmd, args, {
    stdio: ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
    cwd,
    env,
    detached: group,
  });
  if (group && child.pid !== undefined) groupPids.add(child.pid);
  /** @type {Proc} */
  const proc = {
    child,
    name,
    stdout: '',
    stderr: '',
    ended: false,
    exited: new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        proc.ended = true;
        live.delete(proc);
        resolve({ code, signal });
      });
      // Also a child killed mid-send on its IPC channel (EPIPE): never an uncaught error.
      child.on('error', (err) => {
        if (proc.ended || child.pid !== undefined) return;
        proc.ended = true;
        live.delete(proc);
        proc.stderr += `\n${err.message}`;
        resolve({ code: -1, signal: null });
      });
    }),
  };
  child.stdout?.setEncoding('utf8').on('data', (chunk) => {
    proc.stdout = (proc.stdout + chunk).slice(-65536);
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk) => {
    proc.stderr = (proc.stderr + chunk).slice(-65536);
  });
  live.add(proc);
  return proc;
}

/**
 * Runs a command to completion, killing it after `timeoutMs`. Rejects on a non-zero exit.
 * @param {string} cmd
 * @param {string[]} args
 * @param {number} timeoutMs
 * @param {StartOptions} [options]
 * @returns {Promise<{ stdout: string, stderr: string }>}
 */
export async function run(cmd, args, timeoutMs, options = {}) {
  const proc = start(cmd, args, options);
  const timer = setTimeout(() => signal(proc, 'SIGKILL'), timeoutMs);
  const { code, signal: by } = await proc.exited;
  clearTimeout(timer);
  if (code !== 0) {
    const why = by === 'SIGKILL' ? `timed out after ${timeoutMs} ms` : `exit ${code ?? by}`;
    throw new Error(`${proc.name}: ${why}\n${tail(proc.stderr || proc.stdout)}`);
  }
  return { stdout: proc.stdout, stderr: proc.stderr };
}

/**
 * Stops a child: SIGTERM, then SIGKILL if it has not exited after `graceMs`.
 * @param {Proc} proc
 * @param {number} [graceMs]
 */
export async function stop(proc, graceMs = 3000) {
  if (proc.ended) return;
  signal(proc, 'SIGTERM');
  const timer = setTimeout(() => signal(proc, 'SIGKILL'), graceMs);
  await proc.exited;
  clearTimeout(timer);
}

/**
 * SIGKILLs a child (its whole group if it leads one, even once the leader exited) and waits
 * for it: for children that hold no state worth a graceful stop.
 * @param {Proc} proc
 */
export async function kill(proc) {
  signal(proc, 'SIGKILL');
  await proc.exited;
}

/** Last-resort cleanup, synchronous so it also works from an 'exit' handler. */
export function killAll() {
  for (const proc of live) signal(proc, 'SIGKILL');
  live.clear();
  for (const pid of groupPids) killGroup(pid, 'SIGKILL');
}

/**
 * @param {Proc} proc
 * @param {NodeJS.Signals} sig
 */
function signal(proc, sig) {
  const pid = proc.child.pid;
  if (pid !== undefined && groupPids.has(pid)) killGroup(pid, sig);
  else if (!proc.ended) proc.child.kill(sig);
}

/**
 * @param {number} pid
 * @param {NodeJS.Signals} sig
 */
function killGroup(pid, sig) {
  try {
    process.kill(-pid, sig);
  } catch {} // ESRCH: the group is gone
  if (sig === 'SIGKILL') groupPids.delete(pid);
}

/**
 * Resolves with the first match of `pattern` in the child's stdout.
 * @param {import('./procs.js').Proc} proc
 * @param {RegExp} pattern
 * @param {number} [timeoutMs]
 */
export async function waitForOutput(proc, pattern, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const match = pattern.exec(proc.stdout);
    if (match) return match;
    if (proc.ended) break;
    await sleep(20);
  }
  throw new Error(`${proc.name}: no ${pattern} on stdout\n${tail(proc.stderr || proc.stdout)}`);
}

/** Whether a command exists on PATH (e.g. haproxy is optional). @param {string} cmd */
export async function which(cmd) {
  try {
    await run('sh', ['-c', `command -v ${cmd}`], 5000);
    return true;
  } catch {
    return false;
  }
}

/**
 * The last lines of a child's output, for error messages.
 * @param {string} text
 * @param {number} [lines]
 */
export function tail(text, lines = 15) {
  return text.trim().split('\n').slice(-lines).join('\n');
}
