import type { BackendSpec } from '../types.js';

/**
 * The validated values of a config, as plugins see them (`service.config`, `runtime.config`):
 * defaults applied, durations in ms. The plugin objects themselves are the loader's business
 * (core/config/types.ts), so this file depends on no plugin type.
 */

/** Service keys that, written at the root of a `services:` config, are defaults for every service. */
export const INHERITED = [
  'connect_timeout',
  'idle_timeout',
  'retries',
  'drain_timeout',
  'max_connections',
  'tcp_nodelay',
] as const;

/** A plugin a config enables, by the name it is listed under, with its validated options. */
export interface EnabledPlugin {
  name: string;
  options: Record<string, unknown>;
}

/** One service's settings (all durations in ms). */
export interface ServiceSettings {
  name: string;
  listen: string[];
  backends: BackendSpec[];
  connect_timeout: number;
  idle_timeout: number;
  retries: number;
  drain_timeout: number;
  max_connections: number;
  tcp_nodelay: boolean;
  /** Service-scope plugins in config order; exactly one is a balancer. */
  plugins: readonly EnabledPlugin[];
}

/** The whole config's settings. */
export interface ProcessSettings {
  /** Absolute path of the file it came from (or a label for text configs). */
  file: string;
  log_level?: string;
  /** Worker processes: 1 runs everything in one process; see docs/multi-process.md. */
  workers: number | 'auto';
  /** How connections reach workers when workers > 1 (core/cluster/scheduling.ts). */
  scheduling: 'auto' | 'reuseport' | 'rr' | 'none';
  /** Workers' `--max-semi-space-size` in MiB (default 2); undefined: Node's default (0 in the file). */
  worker_semi_space?: number;
  /** How long a plugin may take to load its module, and to start (ms). */
  plugin_timeout: number;
  /** How long a stop may take past drain_timeout before the process exits anyway (ms). */
  stop_grace: number;
  /** In config order; the first is the default service for APIs that take a service name. */
  services: readonly ServiceSettings[];
  /** Process-scope plugins. */
  plugins: readonly EnabledPlugin[];
}
