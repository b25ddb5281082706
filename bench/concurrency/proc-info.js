// What /proc says about a process tree: the children of a pid, and the sockets a process holds.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** Pids of the direct children of `pid` (every thread's children file), sorted. */
export function childPids(pid) {
  const pids = new Set();
  let tasks = [];
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

/** Descriptors of `pid`: all, and sockets among them; null once the process is gone. */
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
