import type { Plugin } from '../plugin.js';
import { loadPlugin } from '../plugin-loader.js';
import { checkBackendOptionClashes } from './backend-options.js';
import { DEFAULT_BALANCER } from './compose-schema.js';
import type { YamlSource } from './yaml-source.js';

/**
 * Loads every plugin a config names (root `plugins:` and each service's), plus the default
 * balancer. A plugin that fails to load is reported at its key and listed in `failed`, so the
 * rest of the config is still checked and every problem comes at once.
 */
export async function loadConfigPlugins(
  src: YamlSource,
  data: Record<string, unknown>,
  baseDir: string,
  /** How long one plugin module may take to load (ms). */
  timeoutMs: number,
): Promise<{ loaded: Map<string, Plugin>; failed: Set<string> }> {
  const multi = data.services !== undefined;
  const loaded = new Map<string, Plugin>();
  const failed = new Set<string>();
  const pluginMaps: Array<{ path: Array<string | number>; map: Record<string, unknown> }> = [];
  const collect = (path: Array<string | number>, value: unknown) => {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return;
    const map = value as Record<string, unknown>;
    for (const key of Object.keys(map)) if (map[key] === null) map[key] = {}; // `round-robin:` alone
    pluginMaps.push({ path, map });
  };
  collect(['plugins'], data.plugins);
  if (multi && data.services !== null && typeof data.services === 'object')
    for (const [name, svc] of Object.entries(data.services as Record<string, unknown>))
      if (svc !== null && typeof svc === 'object')
        collect(['services', name, 'plugins'], (svc as any).plugins);
  for (const { path, map } of pluginMaps) {
    for (const name of Object.keys(map)) {
      if (loaded.has(name) || failed.has(name)) continue;
      try {
        loaded.set(name, await loadPlugin(name, baseDir, timeoutMs));
      } catch (err) {
        failed.add(name);
        src.report([...path, name], (err as Error).message, true);
      }
    }
  }
  if (!loaded.has(DEFAULT_BALANCER))
    loaded.set(DEFAULT_BALANCER, await loadPlugin(DEFAULT_BALANCER, baseDir, timeoutMs));
  checkBackendOptionClashes(src, loaded, (name) => [
    ...(pluginMaps.find((m) => name in m.map)?.path ?? ['plugins']),
    name,
  ]);
  return { loaded, failed };
}
