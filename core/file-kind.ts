import type { Stats } from 'node:fs';

/**
 * What a path that should be a regular file is instead, for error messages: `a directory`,
 * `a FIFO` (a read would block forever), `a device`, `a socket`, or `not a regular file`.
 * Plugins reach it through the SDK, so every "is a FIFO" message reads the same.
 */
export function describeFileKind(st: Stats): string {
  if (st.isFile()) return 'a regular file';
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}
