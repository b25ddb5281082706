import { unsupportedBackendOptionSchema } from './backend-option-values.js';
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
  if (p.backendOptions !== undefined) {
    const options = p.backendOptions as Record<string, unknown> | null;
    if (typeof options !== 'object' || options === null || Array.isArray(options))
      return `plugin "${p.name}" has backendOptions that is not an object of key → JSON Schema`;
    for (const [key, schema] of Object.entries(options)) {
      if (!/^[a-z][a-z0-9_]*$/.test(key))
        return `plugin "${p.name}" declares a backend option "${key}" (use lower_snake_case)`;
      if (typeof schema !== 'object' || schema === null)
        return `plugin "${p.name}" has a backend option "${key}" whose schema is not an object`;
      const unsupported = unsupportedBackendOptionSchema(schema as Record<string, unknown>);
      if (unsupported !== undefined)
        return `plugin "${p.name}" has a backend option "${key}" whose schema ${unsupported}`;
    }
  }
  return undefined;
}
