/**
 * The plugin contract: the object a plugin module exports. Typed against the interfaces of
 * core/contract.ts, never against the core's classes.
 */
import type { Runtime, Service } from './contract.js';
import type { JsonSchema } from './json-schema.js';

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
   * Keys this plugin reads from each backend spec (`backends: [{ address, <key>: ... }]`), with
   * the JSON Schema of each value. The core adds them to the backend schema, so they are
   * validated at their line and column and editors complete them; a backend that uses one in
   * a service that does not enable the plugin is a config error. A key may not be one of the
   * core's (`address`, `weight`, `tls`, ...) or another plugin's. Read it as
   * `backend.spec[key]` (the admin API's `POST /backends` does not take plugin keys).
   */
  backendOptions?: Record<string, JsonSchema>;
  /**
   * Checks of the options a JSON Schema cannot express (a table size that must be a prime, two
   * options that exclude each other, a route to a service that does not exist). Called at
   * config load with the options validated and defaults applied, and what the plugin may need
   * to know of the rest of the config; each issue is reported at its path under the plugin's
   * key, with the file, line and column, like a schema error.
   */
  check?(options: any, context: CheckContext): OptionIssue[] | undefined;
}

/** What a plugin's `check` is told about the config beyond its own options. */
export interface CheckContext {
  /** The service the plugin is enabled in (`default` in a one-service config); undefined for a process plugin. */
  readonly service?: string;
  /** Every service of the config by name, in config order, and whether it listens (false: a pool). */
  readonly services: ReadonlyMap<string, { readonly listens: boolean }>;
}

/** A problem with one option, returned by a plugin's `check`. */
export interface OptionIssue {
  /** Path below the plugin's options, e.g. `['table_size']`; `[]` for the options as a whole. */
  path: Array<string | number>;
  message: string;
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
