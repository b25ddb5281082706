import type { JsonSchema, Plugin } from '../plugin.js';
import { fillBackendFields } from './backend-fields.js';
import { backendItemSchema } from './backend-options.js';
import { processProperties, serviceProperties } from './core-schema.js';

/** The balancer used when a service lists none. */
export const DEFAULT_BALANCER = 'round-robin';

const EMPTY_OPTIONS: JsonSchema = { type: 'object', additionalProperties: false, properties: {} };

/** The schema of a `plugins:` map holding the given plugins' options. */
function pluginsSchema(plugins: ReadonlyMap<string, Plugin>): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  for (const [name, plugin] of plugins) {
    // Options marked `backendFieldsSchema` take every loaded plugin's backend keys.
    const own = fillBackendFields(plugin.schema ?? EMPTY_OPTIONS, plugins);
    // No `default` here: ajv would then enable every plugin it knows of.
    properties[name] = {
      ...own,
      description:
        (own.description as string | undefined) ?? plugin.description ?? `Options of the ${name} plugin.`,
    };
  }
  return {
    type: 'object',
    description: 'Plugins to enable, keyed by name; the value is the plugin options ({} for defaults).',
    additionalProperties: false,
    properties,
    default: {},
  };
}

/**
 * The whole config schema: core keys plus one entry per plugin. Used by the loader with the
 * plugins a config names, and by `npm run schema` with every built-in to write config.schema.json.
 */
export function composeSchema(plugins: ReadonlyMap<string, Plugin>): JsonSchema {
  const plugin = pluginsSchema(plugins);
  // Plugin-owned backend keys (Plugin.backendOptions) join the core's.
  const backends = { ...serviceProperties.backends, items: backendItemSchema(plugins) };
  const service = {
    type: 'object',
    additionalProperties: false,
    // Without `listen` a service is a pool that routers send sessions to (at least one listens).
    properties: { ...serviceProperties, backends, plugins: plugin },
  };
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'Switchyard config',
    description: 'One service (listen/backends/plugins at the top) or several under "services".',
    type: 'object',
    additionalProperties: false,
    properties: {
      ...processProperties,
      ...serviceProperties,
      backends,
      plugins: plugin,
      services: {
        type: 'object',
        description: 'Named services, each with its own listeners, backends and plugins.',
        minProperties: 1,
        additionalProperties: service,
      },
    },
  };
}
