// /proc readings of other processes: CPU seconds, descriptor counts, the process tree.
// Linux only; every reader returns null (or an empty list) for a process that is gone.
import { readdirSync } from 'node:fs';
import { cpuSeconds, processTree } from '../lib/cpu.js';

export { processTree };

/** Number of open descriptors of `pid`, or null. */
export function fdCount(pid) {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

/** CPU seconds per pid of the tree under `pid`. */
export function treeCpu(pid) {
  const out = new Map();
  for (const p of processTree(pid)) {
    const s = cpuSeconds(p);
    if (s !== null) out.set(p, s);
  }
  return out;
}

/** CPU seconds the tree spent between two `treeCpu` samples (a process new in `after` counts from 0). */
export function treeCpuDelta(before, after) {
  let sum = 0;
  for (const [p, s] of after) sum += s - (before.get(p) ?? 0);
  return sum;
}
