import type { JsonSchema, Plugin } from './plugin.js';
import type { BackendSpec } from './types.js';

/**
 * Plugin-owned backend keys (`Plugin.backendOptions`) checked at run time, for specs that never
 * went through the config's schema: a discovery source's list (etcd, DNS) and `registry.add`.
 * The data plane does not hold ajv (the config is validated in a thread of its own), so the
 * value schemas of backend options are limited to the keywords below, which this checks; a
 * plugin that declares another one is refused when it loads (plugin-shape.ts).
 */

/** Keywords a backend option's schema may use: checked here, or only informative. */
export const BACKEND_OPTION_KEYWORDS = new Set([
  'type',
  'enum',
  'const',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'minLength',
  'maxLength',
  'pattern',
  'description',
  'title',
  'default',
  'examples',
  '$comment',
  'deprecated',
]);

/** Scalar types a backend option may take. */
const TYPES = new Set(['string', 'integer', 'number', 'boolean']);

/** Why a backend option's schema cannot be checked at run time, or undefined when it can. */
export function unsupportedBackendOptionSchema(schema: JsonSchema): string | undefined {
  for (const keyword of Object.keys(schema))
    if (!BACKEND_OPTION_KEYWORDS.has(keyword))
      return `uses "${keyword}"; backend options are checked at run time too (backends from discovery sources), with ${[...BACKEND_OPTION_KEYWORDS].slice(0, 10).join(', ')}`;
  const types = schema.type === undefined ? [] : Array.isArray(schema.type) ? schema.type : [schema.type];
  for (const t of types)
    if (typeof t !== 'string' || !TYPES.has(t))
      return `has type ${JSON.stringify(t)}; a backend option is a string, integer, number or boolean`;
  if (schema.enum !== undefined && !Array.isArray(schema.enum)) return 'has an "enum" that is not a list';
  if (typeof schema.pattern === 'string')
    try {
      new RegExp(schema.pattern, 'u');
    } catch (err) {
      return `has a "pattern" that is not a regular expression: ${(err as Error).message}`;
    }
  return undefined;
}

/** What is wrong with `value` for `schema` (a sentence after the key), or undefined. */
export function backendOptionProblem(schema: JsonSchema, value: unknown): string | undefined {
  const types = schema.type === undefined ? [] : Array.isArray(schema.type) ? schema.type : [schema.type];
  if (types.length > 0 && !types.some((t) => hasType(value, t as string)))
    return `must be ${types.join(' or ')}, got ${JSON.stringify(value)}`;
  if (Array.isArray(schema.enum) && !schema.enum.some((v) => v === value))
    return `must be one of ${schema.enum.map((v) => JSON.stringify(v)).join(', ')}, got ${JSON.stringify(value)}`;
  if ('const' in schema && schema.const !== value)
    return `must be ${JSON.stringify(schema.const)}, got ${JSON.stringify(value)}`;
  if (typeof value === 'number') {
    const n = schema as Record<string, number | undefined>;
    if (n.minimum !== undefined && value < n.minimum) return `must be at least ${n.minimum}, got ${value}`;
    if (n.maximum !== undefined && value > n.maximum) return `must be at most ${n.maximum}, got ${value}`;
    if (n.exclusiveMinimum !== undefined && value <= n.exclusiveMinimum)
      return `must be above ${n.exclusiveMinimum}, got ${value}`;
    if (n.exclusiveMaximum !== undefined && value >= n.exclusiveMaximum)
      return `must be below ${n.exclusiveMaximum}, got ${value}`;
  }
  if (typeof value === 'string') {
    const length = [...value].length;
    const n = schema as Record<string, number | undefined>;
    if (n.minLength !== undefined && length < n.minLength)
      return `must be at least ${n.minLength} characters long`;
    if (n.maxLength !== undefined && length > n.maxLength)
      return `must be at most ${n.maxLength} characters long`;
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value))
      return `must match ${schema.pattern}, got ${JSON.stringify(value)}`;
  }
  return undefined;
}

function hasType(value: unknown, type: string): boolean {
  switch (type) {
    case 'string':
      return typeof value === 'string';
    case 'boolean':
      return typeof value === 'boolean';
    case 'integer':
      return Number.isInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    default:
      return false;
  }
}

/**
 * The run-time check of a service's backend specs: every key an enabled plugin declares must
 * hold a value its schema accepts. Built once per service; returns the first problem, naming
 * the key and the plugin. Keys no enabled plugin declares are left alone (a store shared with
 * other tools may carry its own).
 */
export function backendOptionsChecker(
  enabled: ReadonlyArray<{ plugin: Plugin }>,
): (spec: BackendSpec) => string | undefined {
  const declared = new Map<string, { schema: JsonSchema; plugin: string }>();
  for (const { plugin } of enabled)
    for (const [key, schema] of Object.entries(plugin.backendOptions ?? {}))
      if (!declared.has(key)) declared.set(key, { schema, plugin: plugin.name });
  if (declared.size === 0) return () => undefined;
  return (spec) => {
    for (const [key, { schema, plugin }] of declared) {
      if (!Object.hasOwn(spec, key) || spec[key] === undefined) continue;
      const problem = backendOptionProblem(schema, spec[key]);
      if (problem !== undefined)
        return `backend ${spec.address}: ${key} ${problem} (an option of plugin "${plugin}")`;
    }
    return undefined;
  };
}
