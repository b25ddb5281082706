// Child processes of a benchmark run: every one is tracked so that a normal end, an error or
// Ctrl-C all leave nothing running, and ports are OS-assigned so parallel runs never collide.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** @type {Set<import('node:child_process').ChildProcess>} */
const live = new Set();

/**
 * Spawns a tracked child. Output is kept (last 64 KiB) for error messages and parsing.
 * @param {string} cmd
 * @param {string[]} args
 * @param {{ cwd?: string, env?: NodeJS.ProcessEnv }} [options]
 */
export function start(cmd, args, options = {}) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  const proc = {
    child,
    name: `${cmd} ${args.join(' ')}`,
    stdout: '',
    stderr: '',
    /** Exited, or failed to spawn at all (e.g. ENOENT: then exitCode stays null). */
    ended: false,
    /** @type {Promise<{ code: number | null, signal: string | null }>} */
    exited: new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        proc.ended = true;
        live.delete(child);
        resolve({ code, signal });
      });
      child.on('error', (err) => {
        proc.ended = true;
        live.delete(child);
        proc.stderr += `\n${err.message}`;
        resolve({ code: -1, signal: null });
      });
    }),
  };
  const keep = (key) => (chunk) => {
    proc[key] = (proc[key] + chunk).slice(-65536);
  };
  child.stdout.setEncoding('utf8').on('data', keep('stdout'));
  child.stderr.setEncoding('utf8').on('data', keep('stderr'));
  live.add(child);
  return proc;
}

/**
 * Runs a command to completion, killing it after `timeoutMs`. Rejects on a non-zero exit.
 * @returns {Promise<{ stdout: string, stderr: string }>}
 */
export async function run(cmd, args, timeoutMs, options = {}) {
  const proc = start(cmd, args, options);
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), timeoutMs);
  const { code, signal } = await proc.exited;
  clearTimeout(timer);
  if (code !== 0) {
    const why = signal === 'SIGKILL' ? `timed out after ${timeoutMs} ms` : `exit ${code ?? signal}`;
    throw new Error(`${proc.name}: ${why}\n${tail(proc.stderr || proc.stdout)}`);
  }
  return { stdout: proc.stdout, stderr: proc.stderr };
}

/** Stops a child: SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
export async function stop(proc, graceMs = 3000) {
  if (proc.ended) return;
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), graceMs);
  await proc.exited;
  clearTimeout(timer);
}

/** Last-resort cleanup, synchronous so it also works from an 'exit' handler. */
export function killAll() {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
}

/** A port the OS just handed out and released. Callers retry if another process takes it first. */
export async function freePort() {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = /** @type {net.AddressInfo} */ (server.address());
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resolves once something accepts TCP connections on the port; rejects if `proc` exits first. */
export async function waitForPort(port, proc, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc?.ended) {
      throw new Error(`${proc.name} exited during startup\n${tail(proc.stderr || proc.stdout)}`);
    }
    if (await canConnect(port)) return;
    await sleep(50);
  }
  throw new Error(
    `nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms${proc ? ` (${proc.name})` : ''}`,
  );
}

/** Resolves with the first match of `pattern` in the child's stdout. */
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

function canConnect(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Whether a command exists on PATH (e.g. haproxy is optional). */
export async function which(cmd) {
  try {
    await run('sh', ['-c', `command -v ${cmd}`], 5000);
    return true;
  } catch {
    return false;
  }
}

export function tail(text, lines = 15) {
  return text.trim().split('\n').slice(-lines).join('\n');
}
