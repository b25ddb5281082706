import type { JsonSchema } from './json-schema.js';

/**
 * The keyword that marks "a backend's fields go here" in a plugin's option schema. The config
 * composer replaces the marked schema with the backend schema — the core's keys plus every
 * loaded plugin's `backendOptions` — so a plugin that hands out backends (a discovery source)
 * validates per-backend keys it cannot know of (another plugin's) where they are written.
 */
export const BACKEND_FIELDS = 'x-backend-fields';

/** What the marker carries (the value of the `x-backend-fields` keyword). */
export interface BackendFieldsMarker {
  /** Backend keys the option may not set (the plugin sets them itself, e.g. `address`). */
  omit: string[];
}

export interface BackendFieldsSchemaOptions {
  /**
   * Backend keys the option may not set, besides `address` (always left out: the plugin
   * finds the address). dns-discovery leaves out `weight` too: SRV records carry it.
   */
  omit?: string[];
}

/**
 * The schema of an option that holds fields of a backend (`backend: { tls: true,
 * proxy_protocol: v2 }`), as a config backend takes them: the core's keys (`weight`, `tls`,
 * `servername`...) and the `backendOptions` of plugins. A key owned by a plugin that the
 * service does not enable, or by no plugin, is a config error at its line; so is a bad value.
 * The plugin receives a plain object (no defaults are filled in).
 *
 *   schema: { type: 'object', properties: { backend: backendFieldsSchema('Fields every discovered backend gets.') } }
 */
export function backendFieldsSchema(
  description: string,
  options: BackendFieldsSchemaOptions = {},
): JsonSchema {
  const marker: BackendFieldsMarker = { omit: ['address', ...(options.omit ?? [])] };
  return { type: 'object', description, [BACKEND_FIELDS]: marker };
}
