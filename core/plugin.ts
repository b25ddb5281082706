import type { JsonSchema } from './json-schema.js';
import type { Runtime } from './runtime.js';
import type { Service } from './service.js';

export type { JsonSchema };

/**
 * `balancer`: taps `select`; exactly one per service (round-robin when none is listed).
 * `generic`: anything else.
 */
export type PluginKind = 'balancer' | 'generic';

interface PluginBase {
  /** Short name used as the key under `plugins:` in the config. */
  name: string;
  version?: string;
  kind?: PluginKind;
  /** JSON Schema of the plugin's options; defaults apply. Omitted: the plugin takes no options. */
  schema?: JsonSchema;
  /** Names of plugins that must be enabled too (in the same service, or process-wide). */
  dependencies?: string[];
  /** One line for `--help` style listings and docs. */
  description?: string;
  /**
   * Capabilities the core asks for by name rather than by plugin, so a third-party plugin can
   * stand in for a built-in one. Known: `'upstream-tls'` (dials backends with `tls: true` —
   * without an enabled plugin providing it, such a backend is a config or admin API error).
   */
  provides?: string[];
  /**
   * Checks of the options a JSON Schema cannot express (a table size that must be a prime, two
   * options that exclude each other). Called at config load with the options validated and
   * defaults applied; each issue is reported at its path under the plugin's key, with the file,
   * line and column, like a schema error.
   */
  check?(options: any): OptionIssue[] | undefined;
}

/** A problem with one option, returned by a plugin's `check`. */
export interface OptionIssue {
  /** Path below the plugin's options, e.g. `['table_size']`; `[]` for the options as a whole. */
  path: Array<string | number>;
  message: string;
}

/** The capability a plugin declares when it dials `tls: true` backends (tls-upstream does). */
export const UPSTREAM_TLS = 'upstream-tls';

/** The built-in plugin that provides UPSTREAM_TLS, named in error messages. */
export const TLS_UPSTREAM = 'tls-upstream';

/** True when one of `uses` declares the capability (`provides`). */
export function someProvides(
  uses: ReadonlyArray<{ plugin: { provides?: string[] } }>,
  capability: string,
): boolean {
  return uses.some((u) => u.plugin.provides?.includes(capability) === true);
}

/**
 * A plugin applied to one service (most plugins: balancers, health checks, limits). `apply`
 * runs once per service that lists it, before the service starts; tap hooks here — never later.
 */
export interface ServicePlugin<Options = any> extends PluginBase {
  scope?: 'service';
  /**
   * Where it runs when `workers` > 1 (docs/multi-process.md). `workers` (default): in every
   * worker only — the data plane, where sessions are. `any`: also in the primary, applied to
   * its control-plane services (the authoritative registry, no listeners, no sessions); the
   * plugin looks at `service.runtime.role` to do its part there. Backend statuses it sets in
   * the primary (source = the plugin's name) reach every worker with the registry snapshots,
   * so the plugin in a worker follows them (`backendStatus` hook) instead of computing its
   * own — health-check probes once, in the primary, this way.
   */
  runsIn?: 'workers' | 'any';
  apply(service: Service, options: Options): void | Promise<void>;
  /**
   * Cluster primary only: a reload (SIGHUP) changed this plugin's options for `service`.
   * Apply them in place (workers get the new options by being replaced). Without it the
   * primary keeps the old options until a restart and logs a warning.
   */
  reconfigure?(service: Service, options: Options): void;
}

/**
 * A plugin applied once to the process (admin API, metrics). It sees every service through
 * `runtime.services`. In a single-service config it is listed under the same `plugins:` key.
 */
export interface ProcessPlugin<Options = any> extends PluginBase {
  scope: 'process';
  /**
   * Where it runs when `workers` > 1 (docs/multi-process.md). `any` (default): in the primary
   * and in every worker, like force-disconnect, which needs each worker's sessions.
   * `primary`: in the primary only — plugins that serve HTTP (admin-api, metrics, dashboard),
   * since one port cannot be bound by every worker and the primary holds the aggregated view.
   * With one process (the default) the plugin always runs.
   */
  runsIn?: 'any' | 'primary';
  apply(runtime: Runtime, options: Options): void | Promise<void>;
  /**
   * Cluster primary only: a reload (SIGHUP) changed this plugin's options. Apply what can
   * change in place (admin-api rotates its token); workers get the new options by being
   * replaced. Without it the primary keeps the old options until a restart and logs that.
   */
  reconfigure?(runtime: Runtime, options: Options): void;
}

export type Plugin<Options = any> = ServicePlugin<Options> | ProcessPlugin<Options>;

/** Checks the shape of a loaded plugin; returns a message when it is not a plugin. */
export function checkPluginShape(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'does not export a plugin object';
  const p = value as Record<string, unknown>;
  if (typeof p.name !== 'string' || p.name === '') return 'plugin has no name';
  if (typeof p.apply !== 'function') return `plugin "${p.name}" has no apply() function`;
  if (p.scope !== undefined && p.scope !== 'service' && p.scope !== 'process')
    return `plugin "${p.name}" has an unknown scope "${String(p.scope)}"`;
  const places = p.scope === 'process' ? ['any', 'primary'] : ['workers', 'any'];
  if (p.runsIn !== undefined && !places.includes(p.runsIn as string))
    return `plugin "${p.name}" has an unknown runsIn "${String(p.runsIn)}" (expected ${places.join(' or ')})`;
  if (p.check !== undefined && typeof p.check !== 'function')
    return `plugin "${p.name}" has a check that is not a function`;
  if (p.reconfigure !== undefined && typeof p.reconfigure !== 'function')
    return `plugin "${p.name}" has a reconfigure that is not a function`;
  if (p.kind !== undefined && p.kind !== 'balancer' && p.kind !== 'generic')
    return `plugin "${p.name}" has an unknown kind "${String(p.kind)}"`;
  if (
    p.provides !== undefined &&
    !(Array.isArray(p.provides) && p.provides.every((c) => typeof c === 'string'))
  )
    return `plugin "${p.name}" has a provides that is not a list of strings`;
  if (p.schema !== undefined && (typeof p.schema !== 'object' || p.schema === null))
    return `plugin "${p.name}" has a schema that is not an object`;
  return undefined;
}
