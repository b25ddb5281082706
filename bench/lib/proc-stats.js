// What Linux's /proc says about the proxy under test: its process tree (a Switchyard cluster is
// a primary plus N workers), CPU time, resident memory and descriptors. CPU time counts only the
// cycles the proxy itself spent, so on a shared machine it is the figure least distorted by
// other load.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

let ticksPerSecond = 100;
try {
  ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  // Linux has used 100 everywhere for years.
}

/** @typedef {number | null | undefined} Pid  null/undefined: no process (the direct target) */

/**
 * Pids of the direct children of `pid` (every thread's children file), sorted.
 * @param {number} pid
 * @returns {number[]}
 */
export function childPids(pid) {
  const pids = new Set();
  let tasks;
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  for (const task of tasks) {
    try {
      for (const p of readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(/\s+/))
        if (p) pids.add(Number(p));
    } catch {} // the thread ended
  }
  return [...pids].sort((a, b) => a - b);
}

/**
 * `pid` and all its descendants.
 * @param {Pid} pid
 * @returns {number[]}
 */
export function processTree(pid) {
  if (pid === null || pid === undefined) return [];
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) pids.push(...childPids(pids[i]));
  return pids;
}

/**
 * User-mode and kernel-mode CPU seconds of `pid` so far, every thread included, or null (not
 * Linux, process gone). The split matters for a proxy: kernel time is mostly the TCP stack (the
 * same syscalls for every proxy), user time is the proxy's own code.
 * @param {Pid} pid
 * @returns {{ user: number, system: number } | null}
 */
export function cpuTimes(pid) {
  if (pid === null || pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) may contain spaces; the fields after its closing parenthesis are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the whole line, i.e. 11 and 12 after comm and state.
    return { user: Number(fields[11]) / ticksPerSecond, system: Number(fields[12]) / ticksPerSecond };
  } catch {
    return null;
  }
}

/**
 * CPU seconds (user + system) used so far by `pid`, or null.
 * @param {Pid} pid
 */
export function cpuSeconds(pid) {
  const times = cpuTimes(pid);
  return times === null ? null : times.user + times.system;
}

/**
 * CPU seconds of `pid` and its descendants, keyed by pid, so that a difference over a run only
 * counts processes alive at its end (a worker forked during the run counts from zero).
 * @param {Pid} pid
 * @returns {Map<number, { user: number, system: number }> | null}
 */
export function treeCpuTimes(pid) {
  const times = new Map();
  for (const p of processTree(pid)) {
    const t = cpuTimes(p);
    if (t !== null) times.set(p, t);
  }
  return times.size === 0 ? null : times;
}

/**
 * User and kernel CPU seconds the tree spent between two `treeCpuTimes` samples.
 * @param {ReturnType<typeof treeCpuTimes>} before
 * @param {ReturnType<typeof treeCpuTimes>} after
 */
export function treeCpuDelta(before, after) {
  if (before === null || after === null) return null;
  let user = 0;
  let system = 0;
  for (const [p, t] of after) {
    const b = before.get(p) ?? { user: 0, system: 0 };
    user += t.user - b.user;
    system += t.system - b.system;
  }
  return { user, system };
}

/**
 * VmRSS and its anonymous and file-backed parts, the peak, and the proportional set size, in
 * KiB (/proc's "kB"); null once the process is gone. PSS charges each shared page to the
 * processes mapping it in equal parts, so PSS (unlike RSS) adds up across processes: seven
 * Node processes share one copy of the node binary's ~47 MiB of text, which a sum of RSS
 * counts seven times. NaN where smaps_rollup is missing (kernels before 4.14).
 * @param {Pid} pid
 * @returns {{ rss: number, anon: number, file: number, hwm: number, pss: number } | null}
 */
export function residentKiB(pid) {
  if (pid === null || pid === undefined) return null;
  let text;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  /** @param {string} name */
  const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN);
  let pss = Number.NaN;
  try {
    const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    pss = Number(/^Pss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? Number.NaN);
  } catch {}
  return { rss: field('VmRSS'), anon: field('RssAnon'), file: field('RssFile'), hwm: field('VmHWM'), pss };
}

/**
 * Resident set size of `pid` and its descendants together, in MiB, or null.
 * @param {Pid} pid
 */
export function treeRssMiB(pid) {
  const sizes = processTree(pid).flatMap((p) => {
    const rss = residentKiB(p)?.rss;
    return rss === undefined || Number.isNaN(rss) ? [] : [rss];
  });
  return sizes.length === 0 ? null : sizes.reduce((a, b) => a + b, 0) / 1024;
}

/**
 * Descriptors of `pid`: all, and sockets among them; null once the process is gone.
 * @param {number} pid
 */
export function descriptors(pid) {
  let names;
  try {
    names = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return null;
  }
  let sockets = 0;
  for (const name of names) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${name}`).startsWith('socket:')) sockets++;
    } catch {} // closed meanwhile
  }
  return { all: names.length, sockets };
}
