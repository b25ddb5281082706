// CPU time of a process from /proc: user + system, every thread included. On a shared machine
// this is the figure least distorted by other load, since it counts only cycles the proxy spent.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let ticksPerSecond = 100;
try {
  ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  // Linux has used 100 everywhere for years.
}

/** CPU seconds used so far by `pid`, or null when it cannot be read (not Linux, process gone). */
export function cpuSeconds(pid) {
  const times = cpuTimes(pid);
  return times === null ? null : times.user + times.system;
}

/**
 * User-mode and kernel-mode CPU seconds of `pid` so far, or null. The split matters for a proxy:
 * kernel time is mostly the TCP stack (the same syscalls for every proxy), user time is the
 * proxy's own code.
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

/** Resident set size of `pid` in MiB, or null. */
export function rssMiB(pid) {
  if (pid === null || pid === undefined) return null;
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/**
 * `pid` and all its descendants (Linux: /proc/<pid>/task/<tid>/children), for a proxy that forks
 * workers: Switchyard with `workers: N` is a cluster primary plus N worker processes.
 */
export function processTree(pid) {
  if (pid === null || pid === undefined) return [];
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    let tasks;
    try {
      tasks = readdirSync(`/proc/${pids[i]}/task`);
    } catch {
      continue;
    }
    for (const tid of tasks) {
      try {
        const text = readFileSync(`/proc/${pids[i]}/task/${tid}/children`, 'utf8').trim();
        if (text !== '') pids.push(...text.split(' ').map(Number));
      } catch {
        // The thread or the process ended in between.
      }
    }
  }
  return pids;
}

/**
 * CPU seconds of `pid` and its descendants, keyed by pid, so that a difference over a run only
 * counts processes alive at its end (a worker forked during the run counts from zero).
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

/** User and kernel CPU seconds the tree spent between two `treeCpuTimes` samples. */
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

/** Resident set size of `pid` and its descendants together, in MiB, or null. */
export function treeRssMiB(pid) {
  const sizes = processTree(pid)
    .map(rssMiB)
    .filter((s) => s !== null);
  return sizes.length === 0 ? null : sizes.reduce((a, b) => a + b, 0);
}
