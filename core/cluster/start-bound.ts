import { DEFAULT_BALANCER } from '../config/compose-schema.js';
import type { SwitchyardConfig } from '../config/types.js';
import { SwitchyardError } from '../errors.js';
import { DEFAULT_PLUGIN_TIMEOUT, formatMs } from '../plugin-timeout.js';

/**
 * A worker's own part of its start, outside any plugin step: Node and Switchyard's modules
 * loading, the config read and validated, the primary's snapshot round trip, the binds. Not
 * plugin code, so a short plugin_timeout says nothing about it: fork to listening measured
 * 5–8 s on 2 cores at load 21–24 (docs/multi-process.md, Supervision), well under 1 s idle.
 * It loads modules from disk like a plugin import, so a longer plugin_timeout applies to it too.
 */
export const WORKER_OWN_START = 10_000;

/** How long the primary waits for a worker to listen, and how that was counted. */
export interface WorkerStartBound {
  ms: number;
  /** The config's plugin_timeout. */
  pluginTimeout: number;
  /** Plugin modules a worker loads (each named once; the default balancer always). */
  imports: number;
  /** Plugin `apply` calls of a worker, one per plugin use. */
  applies: number;
  /** Start hooks a worker runs in turn: the process's, then each service's. */
  hooks: number;
  /** Plugin steps, each given a whole plugin_timeout: imports + applies + hooks. */
  steps: number;
  /** The worker's own start: `WORKER_OWN_START`, or plugin_timeout if longer. */
  ownStart: number;
}

/**
 * The longest a worker of `config` may legitimately take from fork to listening. A worker runs
 * these one after another:
 *  - its own start (Node, Switchyard's modules, the config), whose end is the snapshot
 *    hand-over and the binds: `WORKER_OWN_START`, or plugin_timeout if longer;
 *  - each plugin module's import, each bounded by plugin_timeout in the worker (a module named
 *    under several services loads once; the default balancer loads always; the config itself
 *    comes from the primary, so no config thread loads them again);
 *  - each plugin's `apply`, bounded by plugin_timeout (one per use: per service, per process);
 *  - the process start hook, then each service's start hook: a hook's taps run together, each
 *    bounded by plugin_timeout, so one hook takes at most one plugin_timeout;
 * Every bounded step gets its whole plugin_timeout, so a cluster starts whatever one process
 * with the same config starts (a plugin whose start takes 45 s under `plugin_timeout: 60s`).
 * A worker past this bound is stuck where plugin_timeout does not reach (a blocked event loop): each step that does reach it fails the worker sooner, with
 * the plugin's name. Overcounting (a service whose plugins tap no start hook) only makes a
 * stuck worker take longer to be given up on; undercounting would fail healthy starts.
 */
export function workerStartBound(config: SwitchyardConfig): WorkerStartBound {
  const pluginTimeout = config.plugin_timeout ?? DEFAULT_PLUGIN_TIMEOUT;
  const modules = new Set<string>([DEFAULT_BALANCER]);
  for (const use of config.plugins) modules.add(use.name);
  for (const service of config.services) for (const use of service.plugins) modules.add(use.name);
  const imports = modules.size;
  // Overcounts process plugins that run in the primary only: harmless (see above).
  const applies = config.plugins.length + config.services.reduce((n, s) => n + s.plugins.length, 0);
  const hooks = 1 + config.services.length;
  const steps = imports + applies + hooks;
  const ownStart = Math.max(WORKER_OWN_START, pluginTimeout);
  return { ms: steps * pluginTimeout + ownStart, pluginTimeout, imports, applies, hooks, steps, ownStart };
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
      `the wait is plugin_timeout (${t}) for each of the ${bound.steps} plugin steps a worker takes in turn ` +
      `(${bound.imports} module loads, ${bound.applies} applies, ${bound.hooks} start hooks) plus ${formatMs(bound.ownStart)} for its own start: ` +
      'raise plugin_timeout if a plugin needs longer to load, apply or start',
  );
}
