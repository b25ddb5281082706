import type { Plugin } from '../plugin.js';
import { builtinPluginNames, loadPlugin } from '../plugin-loader.js';
import { composeSchema } from './compose-schema.js';

/**
 * The schema written to config.schema.json: core plus every built-in plugin, for editor
 * completion (`# yaml-language-server: $schema=./config.schema.json`). A test keeps the
 * committed file equal to this; regenerate with `npm run schema`.
 */
export async function editorSchema(): Promise<Record<string, unknown>> {
  const plugins = new Map<string, Plugin>();
  for (const name of builtinPluginNames()) plugins.set(name, await loadPlugin(name, process.cwd()));
  return { ...composeSchema(plugins), $id: 'https://github.com/switchyard/switchyard/config.schema.json' };
}

export function serializeSchema(schema: Record<string, unknown>): string {
  return `${JSON.stringify(schema, null, 2)}\n`;
}
