import type { JsonSchema, Plugin } from '../plugin.js';
import type { BackendSpec } from '../types.js';
import { backendSchema } from './core-schema.js';
import type { YamlSource } from './yaml-source.js';

/**
 * Plugin-owned backend keys (`Plugin.backendOptions`): a plugin that reads a per-backend
 * setting (`backends: [{ address, proxy_protocol: v1 }]`) declares its key and schema; the core
 * adds it to the backend schema, so it is validated where it is written and editors complete it.
 */

const CORE_KEYS = new Set(Object.keys(backendSchema.properties));

/** Key → the plugin (by name) that owns it, for the plugins a config loaded. */
export function backendOptionOwners(plugins: ReadonlyMap<string, Plugin>): Map<string, Plugin> {
  const owners = new Map<string, Plugin>();
  for (const plugin of plugins.values())
    for (const key of Object.keys(plugin.backendOptions ?? {}))
      if (!CORE_KEYS.has(key) && !owners.has(key)) owners.set(key, plugin);
  return owners;
}

/**
 * A plugin may not take a core backend key or one another plugin owns: reported at the
 * plugin's entry (`at(name)`) so the user sees which two plugins cannot be combined.
 */
export function checkBackendOptionClashes(
  src: YamlSource,
  plugins: ReadonlyMap<string, Plugin>,
  at: (configName: string) => Array<string | number>,
): void {
  const owners = new Map<string, string>();
  for (const [configName, plugin] of plugins) {
    for (const key of Object.keys(plugin.backendOptions ?? {})) {
      const owner = CORE_KEYS.has(key) ? 'the core' : owners.get(key);
      if (owner !== undefined && owner !== plugin.name)
        src.report(
          at(configName),
          `plugin "${plugin.name}" declares the backend option "${key}", which ${owner === 'the core' ? owner : `plugin "${owner}"`} owns already; they cannot be used together`,
          true,
        );
      else owners.set(key, plugin.name);
    }
  }
}

/** The backend item schema: the core's keys plus every loaded plugin's. */
export function backendItemSchema(plugins: ReadonlyMap<string, Plugin>): JsonSchema {
  const properties: Record<string, JsonSchema> = { ...backendSchema.properties };
  for (const [key, plugin] of backendOptionOwners(plugins)) {
    const own = plugin.backendOptions![key]!;
    properties[key] = {
      ...own,
      description: `${(own.description as string | undefined) ?? key} (${plugin.name} plugin)`,
    };
  }
  return { ...backendSchema, properties };
}

/**
 * A backend key owned by a plugin that this service does not enable would be silently
 * ignored: report it at the key instead.
 */
export function checkBackendOptionUse(
  src: YamlSource,
  backends: readonly BackendSpec[],
  enabled: ReadonlyArray<{ plugin: Plugin }>,
  owners: ReadonlyMap<string, Plugin>,
  at: Array<string | number>,
): void {
  if (owners.size === 0) return;
  backends.forEach((spec, i) => {
    checkBackendKeysUse(src, spec, enabled, owners, [...at, 'backends', i]);
  });
}

/** The same check for one object of backend fields (a backend, or a plugin's `backendFieldsSchema` option) at `at`. */
export function checkBackendKeysUse(
  src: YamlSource,
  fields: Readonly<Record<string, unknown>>,
  enabled: ReadonlyArray<{ plugin: Plugin }>,
  owners: ReadonlyMap<string, Plugin>,
  at: Array<string | number>,
): void {
  for (const key of Object.keys(fields)) {
    const owner = owners.get(key);
    if (owner !== undefined && !enabled.some((u) => u.plugin === owner))
      src.report(
        [...at, key],
        `"${key}" is an option of plugin "${owner.name}", which this service does not enable (plugins: { ${owner.name}: {...} })`,
        true,
      );
  }
}
