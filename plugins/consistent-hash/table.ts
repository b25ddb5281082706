import type { Backend } from '../../plugin-sdk/index.js';
import { buildMaglev } from './maglev.js';
import { buildRing, ringStart } from './ring.js';

/** What a table is built from: one backend's canonical address and effective weight. */
export interface TableEntry {
  address: string;
  weight: number;
}

export type Algorithm = 'maglev' | 'ring';

export interface TableSettings {
  algorithm: Algorithm;
  /** Maglev: slots (a prime). */
  tableSize: number;
  /** Ring: points per unit of relative weight. */
  ringPoints: number;
}

/**
 * A built table: `owners[slot]` is an index into `backends`; a key starts at `start(hash)`
 * and, when that backend may not take it (not a candidate, or over its bounded load), goes on
 * to the next slot. Maglev's next slot belongs to an unrelated backend, so one backend's keys
 * spread over all the others; the ring's next point is the next backend clockwise.
 */
export interface HashTable {
  /** Sorted by address. */
  readonly backends: readonly Backend[];
  readonly indexOf: ReadonlyMap<Backend, number>;
  readonly owners: Uint32Array;
  /** The registry's `up` array the table was built from (compared by identity). */
  readonly source: readonly Backend[];
  /** `source[i]` is `backends[sourceIndex[i]]`. */
  readonly sourceIndex: Uint32Array;
  /** The first slot of a key; `hash` is a `hash32` (signed). */
  start(hash: number): number;
}

/** Builds the table of `up` (backends in state `up`) with their effective weights. */
export function buildTable(up: readonly Backend[], settings: TableSettings): HashTable {
  const backends = [...up].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  const entries = backends.map((b) => ({ address: b.address, weight: b.effectiveWeight }));
  const indexOf = new Map(backends.map((b, i) => [b, i]));
  const sourceIndex = Uint32Array.from(up, (b) => indexOf.get(b)!);
  if (settings.algorithm === 'maglev') {
    const owners = buildMaglev(entries, settings.tableSize);
    const size = owners.length;
    return { backends, indexOf, owners, source: up, sourceIndex, start: (hash) => (hash >>> 0) % size };
  }
  const { points, owners } = buildRing(entries, settings.ringPoints);
  return {
    backends,
    indexOf,
    owners,
    source: up,
    sourceIndex,
    start: (hash) => ringStart(points, hash),
  };
}
