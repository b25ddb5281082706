import { hashString } from './hash.js';
import type { TableEntry } from './table.js';

const EMPTY = 0xffffffff;
const OFFSET_SEED = 0x6d61676c; // "magl"
const SKIP_SEED = 0x65763031; // "ev01"

/**
 * The Maglev lookup table (Eisenbud et al., NSDI 2016), weighted as Envoy does: each entry
 * walks its own permutation of the `size` slots (offset and skip from its address) and takes
 * the next free one in turn; an entry of half the largest weight takes a turn every other
 * round. `size` must be a prime (then every skip visits every slot). Returns, per slot, the
 * index of its entry in `entries`. `entries` come sorted by address, so the table depends
 * only on the set of (address, weight), never on the order backends were added.
 */
export function buildMaglev(entries: readonly TableEntry[], size: number): Uint32Array {
  const n = entries.length;
  const owners = new Uint32Array(size).fill(EMPTY);
  if (n === 0) return owners;
  const pos = new Float64Array(n);
  const skip = new Float64Array(n);
  const weight = new Float64Array(n);
  const target = new Float64Array(n);
  let max = 0;
  for (const e of entries) if (e.weight > max) max = e.weight;
  for (let i = 0; i < n; i++) {
    const address = entries[i]!.address;
    pos[i] = hashString(address, OFFSET_SEED) % size;
    skip[i] = (hashString(address, SKIP_SEED) % (size - 1)) + 1;
    weight[i] = entries[i]!.weight / max;
  }
  let filled = 0;
  for (let round = 1; filled < size; round++) {
    for (let i = 0; i < n && filled < size; i++) {
      // An entry of weight w (of the largest 1) takes its k-th slot once round × w ≥ k.
      if (round * weight[i]! < target[i]!) continue;
      target[i]! += 1;
      let c = pos[i]!;
      const s = skip[i]!;
      while (owners[c] !== EMPTY) {
        c += s;
        if (c >= size) c -= size;
      }
      owners[c] = i;
      c += s;
      pos[i] = c >= size ? c - size : c;
      filled++;
    }
  }
  return owners;
}
