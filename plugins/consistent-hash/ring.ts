import { hashString } from './hash.js';
import type { TableEntry } from './table.js';

/** Point and entry index share one float64 sort key: point × 2^21 + index (< 2^53). */
const INDEX_SPAN = 2 ** 21;

/** A hash ring (Karger et al.; Ketama): sorted points, each owned by an entry. */
export interface Ring {
  points: Uint32Array;
  owners: Uint32Array;
}

/**
 * Each entry gets `round(pointsPerWeight × weight / largest weight)` points (at least 1) at
 * `hashString(address, k)`. A point's owner depends only on its own address, so when an
 * entry leaves only its points (its keys) go; when the largest weight changes every count is
 * rescaled. Ties between equal points go to the lower index (entries are sorted by address).
 */
export function buildRing(entries: readonly TableEntry[], pointsPerWeight: number): Ring {
  const n = entries.length;
  if (n >= INDEX_SPAN) throw new RangeError(`a ring holds at most ${INDEX_SPAN - 1} backends`);
  let max = 0;
  for (const e of entries) if (e.weight > max) max = e.weight;
  const counts = entries.map((e) => Math.max(1, Math.round((pointsPerWeight * e.weight) / max)));
  const total = counts.reduce((a, b) => a + b, 0);
  const keys = new Float64Array(total);
  let k = 0;
  for (let i = 0; i < n; i++) {
    const address = entries[i]!.address;
    for (let p = 0; p < counts[i]!; p++) keys[k++] = hashString(address, p) * INDEX_SPAN + i;
  }
  keys.sort();
  const points = new Uint32Array(total);
  const owners = new Uint32Array(total);
  for (let j = 0; j < total; j++) {
    const key = keys[j]!;
    const index = key % INDEX_SPAN;
    points[j] = (key - index) / INDEX_SPAN;
    owners[j] = index;
  }
  return { points, owners };
}

/** The first point at or after `hash` (a signed `hash32`, compared unsigned), wrapping to 0. */
export function ringStart(points: Uint32Array, hash: number): number {
  const h = hash >>> 0;
  let lo = 0;
  let hi = points.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (points[mid]! < h) lo = mid + 1;
    else hi = mid;
  }
  return lo === points.length ? 0 : lo;
}
