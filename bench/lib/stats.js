// Reducing several rounds to one figure per target.

/** @param {number[]} values */
export function median(values) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** @param {number[]} values */
export function best(values) {
  return values.length === 0 ? null : Math.max(...values);
}

/**
 * Relative spread (max − min) / median, to show how noisy a cell was.
 * @param {number[]} values
 */
export function spread(values) {
  const m = median(values);
  if (m === null || m === 0 || values.length < 2) return null;
  return (Math.max(...values) - Math.min(...values)) / m;
}

/**
 * @param {number | null | undefined} a
 * @param {number | null | undefined} b
 */
export function ratio(a, b) {
  return a === null || b === null || a === undefined || b === undefined || b === 0 ? null : a / b;
}
