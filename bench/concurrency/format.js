/**
 * 12345 → "12,345"; anything else as text.
 * @param {unknown} n
 */
export function fmt(n) {
  return typeof n === 'number' ? n.toLocaleString('en-US') : String(n);
}

/**
 * KiB as MiB with one decimal.
 * @param {number} kib
 */
export function mib(kib) {
  return (kib / 1024).toFixed(1);
}
