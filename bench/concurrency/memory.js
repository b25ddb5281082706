// Resident memory of another process, from /proc/<pid>/status (kB there are KiB).
import { readFileSync } from 'node:fs';

/** VmRSS and its anonymous / file-backed parts, in KiB; null once the process is gone. */
export function residentKiB(pid) {
  let text;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { rss: field('VmRSS'), anon: field('RssAnon'), file: field('RssFile'), hwm: field('VmHWM') };
}
