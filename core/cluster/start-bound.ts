import { DEFAULT_BALANCER } from '../config/compose-schema.js';
import type { SwitchyardConfig } from '../config/types.js';
import { SwitchyardError } from '../errors.js';
import { DEFAULT_PLUGIN_TIMEOUT, formatMs } from '../plugin-timeout.js';

/**
 * What a worker does after its plugins' last step: the primary's registry snapshot reaching it
 * (one IPC round trip) and its listeners binding (or taking the primary's sockets). No plugin
 * code and no disk runs there, so it gets a fixed allowance rather than a plugin_timeout.
 */
export const LISTEN_MARGIN = 5_000;

/** How long the primary waits for a worker to listen, and how that was counted. */
export interface WorkerStartBound {
  ms: number;
  /** The config's plugin_timeout. */
  pluginTimeout: number;
  /** Plugin modules a worker loads (each named once; the default balancer always). */
  imports: number;
  /** Start hooks a worker runs in turn: the process's, then each service's. */
  hooks: number;
  /** Steps that are each given a whole plugin_timeout: imports + hooks + the worker's own start. */
  steps: number;
}

/**
 * The longest a worker of `config` may legitimately take from fork to listening. A worker runs
 * these one after another:
 *  - its own start (Node, Switchyard's modules, reading and validating the config): disk-bound
 *    module loading like a plugin's, so one plugin_timeout;
 *  - each plugin module's import, each bounded by plugin_timeout in the worker (a module named
 *    under several services loads once; the default balancer loads always);
 *  - the process start hook, then each service's start hook: a hook's taps run together, each
 *    bounded by plugin_timeout, so one hook takes at most one plugin_timeout;
 *  - the snapshot hand-over and the binds (`LISTEN_MARGIN`).
 * Every bounded step gets its whole plugin_timeout, so a cluster starts whatever one process
 * with the same config starts (a plugin whose start takes 45 s under `plugin_timeout: 60s`).
 * A worker past this bound is stuck where plugin_timeout does not reach (an `apply` that never
 * settles, a blocked event loop): each step that does reach it fails the worker sooner, with
 * the plugin's name. Overcounting (a service whose plugins tap no start hook) only makes a
 * stuck worker take longer to be given up on; undercounting would fail healthy starts.
 */
export function workerStartBound(config: SwitchyardConfig): WorkerStartBound {
  const pluginTimeout = config.plugin_timeout ?? DEFAULT_PLUGIN_TIMEOUT;
  const modules = new Set<string>([DEFAULT_BALANCER]);
  for (const use of config.plugins) modules.add(use.name);
  for (const service of config.services) for (const use of service.plugins) modules.add(use.name);
  const imports = modules.size;
  const hooks = 1 + config.services.length;
  const steps = 1 + imports + hooks;
  return { ms: steps * pluginTimeout + LISTEN_MARGIN, pluginTimeout, imports, hooks, steps };
}

/**
 * The primary gave up on workers: which ones and where they were (`stuck`, e.g. "worker 3,
 * pid 1234: still loading its config and plugins"), how the wait was counted, and what to raise.
 */
export function workersDidNotListen(bound: WorkerStartBound, stuck: readonly string[]): SwitchyardError {
  const t = formatMs(bound.pluginTimeout);
  return new SwitchyardError(
    'SWITCHYARD_E_WORKER_START_TIMEOUT',
    `workers did not listen within ${formatMs(bound.ms)} (${stuck.join('; ')}); ` +
      `the wait is plugin_timeout (${t}) for each of the ${bound.steps} steps a worker takes in turn ` +
      `(its own start, ${bound.imports} plugin module loads, ${bound.hooks} start hooks) plus ${formatMs(LISTEN_MARGIN)} to listen: ` +
      'raise plugin_timeout if a plugin needs longer to load or start',
  );
}
