/** 12345 → "12,345"; anything else as text. */
export function fmt(n) {
  return typeof n === 'number' ? n.toLocaleString('en-US') : String(n);
}
