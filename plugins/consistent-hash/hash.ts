/*
 * MurmurHash3 (x86, 32-bit), written out so that tables and keys hash identically in every
 * process, instance and version: the same key must reach the same backend everywhere. Never
 * change these functions without calling it a remap of every key.
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

function mixK(k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, C2);
}

function mixH(h: number, k: number): number {
  h ^= mixK(k);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** The finaliser: every input bit reaches every output bit. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * Hash of a string's UTF-16 code units, two per 32-bit block, as a signed 32-bit integer:
 * the per-session form (`>>> 0` where the unsigned value is needed — an unsigned result above
 * 2^31 would be a heap number, allocated on every call).
 */
export function hash32(text: string, seed = 0): number {
  let h = seed | 0;
  const n = text.length;
  let i = 0;
  for (; i + 1 < n; i += 2) h = mixH(h, (text.charCodeAt(i) & 0xffff) | (text.charCodeAt(i + 1) << 16));
  if (i < n) h ^= mixK(text.charCodeAt(i) & 0xffff);
  return fmix32(h ^ (n * 2));
}

/** `hash32` as an unsigned 32-bit value (table building). */
export function hashString(text: string, seed = 0): number {
  return hash32(text, seed) >>> 0;
}

/** Folds a 32-bit integer (a port) into a `hash32`: `withInt(hash32(ip), port)`. Signed. */
export function withInt(hash: number, value: number): number {
  return fmix32(mixH(hash, value) ^ 4);
}
