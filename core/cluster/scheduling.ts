/**
 * How connections reach the workers of a cluster (docs/multi-process.md#scheduling):
 * - `reuseport`: each worker accepts on listening sockets of its own (SO_REUSEPORT); the kernel
 *   spreads connections over them and the primary is out of the accept path.
 * - `rr`: node:cluster's round-robin: the primary accepts and hands each descriptor over.
 * - `none`: node:cluster's SCHED_NONE: every worker accepts on one shared socket.
 * `auto` (the default) is `reuseport` where this Node and platform can do it, else `rr`.
 */
export type Scheduling = 'reuseport' | 'rr' | 'none';
export type SchedulingSetting = Scheduling | 'auto';

/** The environment variable that tells a worker the mode its primary resolved. */
export const SCHEDULING_ENV = 'SWITCHYARD_SCHEDULING';

/** First releases with `listen({ reusePort })`: 22.12 on the 22 line, 23.1 after it. */
const REUSEPORT_SINCE = 'Node >= 22.12 (or >= 23.1) on Linux';

/**
 * Whether `server.listen({ reusePort: true })` works here; otherwise why not. Node added the
 * option in 22.12 / 23.1; on Linux the kernel then spreads connections over the sockets.
 * Older Node ignores the option, and node:cluster would share one socket instead.
 */
export function reusePortSupport(
  version = process.versions.node,
  platform: string = process.platform,
): { supported: true } | { supported: false; reason: string } {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const recent = major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
  if (platform === 'linux' && recent) return { supported: true };
  return {
    supported: false,
    reason: `reuseport needs ${REUSEPORT_SINCE}; this is Node v${version} on ${platform}`,
  };
}

/**
 * The mode a cluster runs in. `auto` falls back to `rr` and says why in `note` (logged once at
 * start); asking for `reuseport` where it is unsupported is an error.
 */
export function resolveScheduling(
  setting: SchedulingSetting,
  support = reusePortSupport(),
): { scheduling: Scheduling; note?: string } | { error: string } {
  if (setting !== 'auto' && setting !== 'reuseport') return { scheduling: setting };
  if (support.supported) return { scheduling: 'reuseport' };
  if (setting === 'reuseport') return { error: `scheduling: reuseport is not available: ${support.reason}` };
  return { scheduling: 'rr', note: `scheduling auto: using rr (${support.reason})` };
}

/** The mode a worker was started in (set by its primary); rr if unset. */
export function workerScheduling(env: NodeJS.ProcessEnv = process.env): Scheduling {
  const value = env[SCHEDULING_ENV];
  return value === 'reuseport' || value === 'none' ? value : 'rr';
}
