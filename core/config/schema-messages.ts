import type { ErrorObject } from 'ajv';
import { closest } from './edit-distance.js';
import type { YamlSource } from './yaml-source.js';

/**
 * The wording of schema errors: each ajv error becomes one issue at its place in the file,
 * said the way an operator fixes it (unknown keys with a near miss, the forms a value may take).
 * `failedPlugins`: plugins the loader could not load, reported already at their key.
 */
export function reportSchemaErrors(
  src: YamlSource,
  errors: readonly ErrorObject[],
  failedPlugins: ReadonlySet<string>,
): void {
  for (const e of errors) {
    const path = pointerToPath(e.instancePath);
    if (e.keyword === 'additionalProperties') {
      const prop = (e.params as { additionalProperty: string }).additionalProperty;
      if (path[path.length - 1] === 'plugins' && failedPlugins.has(prop)) continue; // reported by the loader
      src.report([...path, prop], `unknown key "${prop}"${suggest(prop, e.parentSchema)}`, true);
    } else if (e.keyword === 'required') {
      src.report(path, `missing required key "${(e.params as { missingProperty: string }).missingProperty}"`);
    } else if (e.keyword === 'anyOf' || e.keyword === 'oneOf') {
      src.report(path, describeAnyOf(e.schema));
    } else if (e.keyword === 'enum') {
      src.report(
        path,
        `${e.message}: ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`,
      );
    } else {
      src.report(path, e.message ?? 'is invalid');
    }
  }
}

function pointerToPath(pointer: string): Array<string | number> {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

function describeAnyOf(schema: unknown): string {
  const types = Array.isArray(schema) ? schema.map((s) => (s as { type?: string }).type).filter(Boolean) : [];
  return types.length > 0 ? `must be one of: ${types.join(' or ')}` : 'does not match any allowed form';
}

/** ` (did you mean "x"?)` for a near miss among the allowed keys, else the allowed keys. */
function suggest(prop: string, parentSchema: unknown): string {
  const keys = Object.keys((parentSchema as { properties?: object } | undefined)?.properties ?? {});
  const best = closest(prop, keys);
  return best === undefined ? `; allowed: ${keys.join(', ')}` : ` (did you mean "${best}"?)`;
}
