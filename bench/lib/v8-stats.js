// A Node process's own view of its memory, as the benchmark probes report it (the naive proxy
// and the probe plugins loaded into Switchyard all answer with this).
import v8 from 'node:v8';

/** @typedef {Record<string, { size: number, used: number, physical: number }>} HeapSpaces */

/**
 * V8's heap by space, in bytes: what is reserved, used, and resident (physical).
 * @returns {HeapSpaces}
 */
export function heapSpaces() {
  /** @type {HeapSpaces} */
  const spaces = {};
  for (const s of v8.getHeapSpaceStatistics()) {
    if (s.space_size > 0)
      spaces[s.space_name] = { size: s.space_size, used: s.space_used_size, physical: s.physical_space_size };
  }
  return spaces;
}

/** `process.memoryUsage()`, or null: it throws EMFILE at the open-files limit. */
export function memoryUsage() {
  try {
    return process.memoryUsage();
  } catch {
    return null;
  }
}

/** A full GC when the process runs with --expose-gc (else nothing). */
export function fullGc() {
  const gc = /** @type {(() => void) | undefined} */ (globalThis.gc);
  if (typeof gc === 'function') gc();
}
