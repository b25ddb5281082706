// Option parsers the benchmark scripts share (commander).
import { InvalidArgumentError } from 'commander';

/** `--rounds 5` and the like: an integer of at least 1, or commander's usage error. */
export function positiveInt(/** @type {string} */ text) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a positive integer');
  return n;
}
