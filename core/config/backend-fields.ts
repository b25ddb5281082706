import { BACKEND_FIELDS, type BackendFieldsMarker } from '../backend-fields.js';
import type { JsonSchema, Plugin } from '../plugin.js';
import { backendItemSchema, checkBackendKeysUse } from './backend-options.js';
import type { PluginUse } from './types.js';
import type { YamlSource } from './yaml-source.js';

/**
 * Options that hold a backend's fields (`backendFieldsSchema` in the SDK, the
 * `x-backend-fields` marker): the composer fills them with the backend schema of the loaded
 * plugins, and the semantic checks refuse a key whose plugin the service does not enable — as
 * for the config's own backends (backend-options.ts).
 */

/** Where a schema walk may go: `*` stands for any array index or map key. */
type Step = string | '*';

/** `schema` with every marked subschema replaced by the backend fields of `plugins`. */
export function fillBackendFields(schema: JsonSchema, plugins: ReadonlyMap<string, Plugin>): JsonSchema {
  let item: JsonSchema | undefined;
  const fill = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(fill);
    if (typeof node !== 'object' || node === null) return node;
    const n = node as JsonSchema;
    const marker = n[BACKEND_FIELDS] as BackendFieldsMarker | undefined;
    if (marker !== undefined) {
      item ??= backendItemSchema(plugins);
      return fieldsSchema(n, marker, item);
    }
    const out: JsonSchema = {};
    for (const [k, v] of Object.entries(n)) out[k] = fill(v);
    return out;
  };
  return hasMarker(schema) ? (fill(schema) as JsonSchema) : schema;
}

/**
 * The backend schema as an option: no `address` (and whatever the plugin omits), nothing
 * required, and no defaults — ajv would otherwise write `tls: false`, `weight: 1` into every
 * option and so into every backend the plugin hands out.
 */
function fieldsSchema(marked: JsonSchema, marker: BackendFieldsMarker, item: JsonSchema): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  for (const [key, own] of Object.entries(item.properties as Record<string, JsonSchema>)) {
    if (marker.omit.includes(key)) continue;
    const { default: _default, ...rest } = own;
    properties[key] = rest;
  }
  const { [BACKEND_FIELDS]: _marker, ...base } = marked;
  return { ...base, type: 'object', additionalProperties: false, properties };
}

function hasMarker(node: unknown): boolean {
  if (typeof node !== 'object' || node === null) return false;
  if (!Array.isArray(node) && BACKEND_FIELDS in node) return true;
  return Object.values(node).some(hasMarker);
}

/** Paths (below the plugin's options) of the marked options of a plugin's schema. */
export function backendFieldsPaths(schema: JsonSchema | undefined): Step[][] {
  const found: Step[][] = [];
  const walk = (node: unknown, path: Step[]): void => {
    if (typeof node !== 'object' || node === null || Array.isArray(node)) return;
    const n = node as JsonSchema;
    if (BACKEND_FIELDS in n) {
      found.push(path);
      return;
    }
    for (const [key, sub] of Object.entries((n.properties ?? {}) as Record<string, unknown>))
      walk(sub, [...path, key]);
    walk(n.items, [...path, '*']);
    walk(n.additionalProperties, [...path, '*']);
    for (const group of ['anyOf', 'oneOf', 'allOf'])
      if (Array.isArray(n[group])) for (const sub of n[group] as unknown[]) walk(sub, path);
  };
  walk(schema, []);
  return found;
}

/** The values at `path` in `value`, with their concrete paths. */
function valuesAt(
  value: unknown,
  path: readonly Step[],
  at: Array<string | number>,
): Array<{ value: unknown; at: Array<string | number> }> {
  if (path.length === 0) return [{ value, at }];
  if (typeof value !== 'object' || value === null) return [];
  const [step, ...rest] = path as [Step, ...Step[]];
  if (step !== '*') return valuesAt((value as Record<string, unknown>)[step], rest, [...at, step]);
  const entries: Array<[string | number, unknown]> = Array.isArray(value)
    ? value.map((v, i) => [i, v])
    : Object.entries(value);
  return entries.flatMap(([k, v]) => valuesAt(v, rest, [...at, k]));
}

/**
 * A backend field in a plugin's options owned by a plugin that this service does not enable
 * would be handed to backends and silently ignored: report it at the key.
 */
export function checkBackendFieldsUse(
  src: YamlSource,
  uses: readonly PluginUse[],
  owners: ReadonlyMap<string, Plugin>,
  at: Array<string | number>,
): void {
  if (owners.size === 0) return;
  for (const use of uses)
    for (const path of backendFieldsPaths(use.plugin.schema))
      for (const found of valuesAt(use.options, path, [...at, 'plugins', use.name]))
        if (typeof found.value === 'object' && found.value !== null && !Array.isArray(found.value))
          checkBackendKeysUse(src, found.value as Record<string, unknown>, uses, owners, found.at);
}
