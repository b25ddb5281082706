/**
 * Exponential back-off with "equal jitter": the n-th consecutive failure waits between half and
 * all of min(max, base × 2^(n−1)). Jitter spreads reconnects of many proxies to one backend.
 */
export function backoffDelay(failures: number, base: number, max: number, random = Math.random): number {
  if (failures <= 0) return 0;
  const ceiling = Math.min(max, base * 2 ** Math.min(failures - 1, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
