// CPU time of a process from /proc: user + system, every thread included. On a shared machine
// this is the figure least distorted by other load, since it counts only cycles the proxy spent.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

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
