// Every child process of the concurrency benchmark, with an IPC channel each, tracked so that a
// normal end, an error, Ctrl-C or SIGTERM all leave nothing running.
import { spawn } from 'node:child_process';

/** @type {Set<import('node:child_process').ChildProcess>} */
const live = new Set();
/** Children that lead a process group of their own (a cluster primary and its workers). */
const groups = new WeakSet();
/** Their pids until killed here: the group may outlive its leader (workers of a dead primary). */
const groupPids = new Set();

/**
 * @typedef {object} Child
 * @property {import('node:child_process').ChildProcess} child
 * @property {string} name
 * @property {string} stdout last 64 KiB
 * @property {string} stderr last 64 KiB
 * @property {Promise<{ code: number | null, signal: string | null }>} exited
 */

/**
 * Spawns `node <args>` with an IPC channel (fd 3) besides piped stdout/stderr.
 * @param {string} name for messages
 * @param {string[]} args
 * @param {{ cwd?: string, env?: NodeJS.ProcessEnv, group?: boolean }} [options] `group`: the child
 *   leads a new process group, and every kill below kills the whole group (its own children too)
 * @returns {Child}
 */
export function spawnNode(name, args, options = {}) {
  const { group = false, ...rest } = options;
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    ...rest,
    detached: group,
  });
  if (group) {
    groups.add(child);
    groupPids.add(child.pid);
  }
  /** @type {Child} */
  const proc = {
    child,
    name,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        live.delete(child);
        resolve({ code, signal });
      });
      child.on('error', (err) => {
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
  // A child killed mid-send must not crash the benchmark with EPIPE on the channel.
  child.on('error', () => {});
  live.add(child);
  return proc;
}

/** Whether the child has exited. */
export function hasExited(proc) {
  return proc.child.exitCode !== null || proc.child.signalCode !== null;
}

let lastId = 0;

/**
 * Sends `message` with a fresh `id` and resolves with the reply of type `replyType` that carries
 * the same id (a late reply to an earlier, timed-out request is never taken for this one);
 * rejects when the child exits first or after `timeoutMs`.
 */
export function request(proc, message, replyType, timeoutMs) {
  const id = ++lastId;
  return new Promise((resolve, reject) => {
    const done = (fn, value) => {
      clearTimeout(timer);
      proc.child.off('message', onMessage);
      proc.child.off('exit', onExit);
      fn(value);
    };
    const onMessage = (reply) => {
      if (reply?.type === replyType && reply.id === id) done(resolve, reply);
    };
    const onExit = () => done(reject, new Error(`${proc.name} exited\n${tail(proc.stderr || proc.stdout)}`));
    const timer = setTimeout(
      () => done(reject, new Error(`${proc.name}: no "${replyType}" reply within ${timeoutMs} ms`)),
      timeoutMs,
    );
    proc.child.on('message', onMessage);
    proc.child.once('exit', onExit);
    if (hasExited(proc)) {
      onExit();
      return;
    }
    proc.child.send({ ...message, id }, (err) => {
      if (err) done(reject, new Error(`${proc.name}: cannot send ${message.type}: ${err.message}`));
    });
  });
}

/** SIGKILLs a child and waits for it (a benchmark child holds no state worth a graceful stop). */
export async function kill(proc) {
  sigkill(proc.child);
  await proc.exited;
}

/** SIGKILL to the child, or to its whole process group when it leads one (even once it exited). */
function sigkill(child) {
  if (groups.has(child)) {
    killGroup(child.pid);
    return;
  }
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

function killGroup(pid) {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {} // ESRCH: the group is gone
  groupPids.delete(pid);
}

/** Last-resort cleanup, synchronous so it also works from an 'exit' handler. */
export function killAll() {
  for (const child of live) sigkill(child);
  live.clear();
  for (const pid of groupPids) killGroup(pid);
}

/**
 * Runs `body` with the guarantee that no child outlives it: normal end, thrown error, Ctrl-C
 * or SIGTERM.
 * @template T
 * @param {() => Promise<T>} body
 * @returns {Promise<T>}
 */
export async function withChildren(body) {
  const onSignal = (signal) => {
    process.stderr.write(`\n${signal}: stopping every benchmark process\n`);
    killAll();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', killAll);
  try {
    return await body();
  } finally {
    killAll();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', killAll);
  }
}

export function tail(text, lines = 15) {
  return text.trim().split('\n').slice(-lines).join('\n');
}
