import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { PluginUse, SwitchyardConfig } from './config/types.js';
import type { ProcessPlugin, ServicePlugin } from './plugin.js';
import type { Runtime } from './runtime.js';

/**
 * Cluster reload, part that concerns the primary's own plugins (workers get the new config by
 * being replaced). Returns the reasons the reload cannot be applied without a restart: a
 * control-plane service plugin (`runsIn: 'any'`, e.g. health-check) added to or removed from a
 * service, or a new service that uses one, because workers would then follow statuses nobody
 * sets, or miss ones still set.
 */
export function primaryPluginChangesNeedingRestart(
  previous: SwitchyardConfig,
  next: SwitchyardConfig,
): string[] {
  const problems: string[] = [];
  for (const sc of next.services) {
    const before = previous.services.find((s) => s.name === sc.name);
    if (!before) {
      // The primary learns new services only at a restart, so nobody would run these here.
      for (const name of controlPlane(sc.plugins).keys())
        problems.push(`service "${sc.name}" is new and uses plugin "${name}", which runs in the primary`);
      continue;
    }
    const was = controlPlane(before.plugins);
    const now = controlPlane(sc.plugins);
    for (const name of now.keys())
      if (!was.has(name)) problems.push(`plugin "${name}" added to service "${sc.name}"`);
    for (const name of was.keys())
      if (!now.has(name)) problems.push(`plugin "${name}" removed from service "${sc.name}"`);
  }
  return problems;
}

/**
 * Gives plugins their reloaded options (`reconfigure`) — in a cluster primary its control-plane
 * service plugins and process plugins, in one process (`single`) every plugin — and warns about
 * option changes that wait for a restart (plugins without `reconfigure`).
 */
export function reconfigurePlugins(
  runtime: Runtime,
  previous: SwitchyardConfig,
  next: SwitchyardConfig,
  log: Logger,
  /** `single`: one process reloading itself; every service plugin is here, no worker takes the rest. */
  mode: 'primary' | 'single' = 'primary',
): void {
  const later = mode === 'single' ? 'at restart' : 'the primary at restart';
  const pick =
    mode === 'single' ? (uses: PluginUse[]) => new Map(uses.map((u) => [u.name, u])) : controlPlane;
  for (const sc of next.services) {
    const service = runtime.services.get(sc.name);
    const before = previous.services.find((s) => s.name === sc.name);
    if (!service || !before) continue;
    const was = pick(before.plugins);
    for (const [name, use] of pick(sc.plugins)) {
      const old = was.get(name);
      if (!old || isDeepStrictEqual(old.options, use.options)) continue;
      const plugin = use.plugin as ServicePlugin;
      if (typeof plugin.reconfigure !== 'function') {
        log.warn(
          { service: sc.name, plugin: name },
          `plugin options changed: they take effect ${mode === 'single' ? 'at restart' : 'in the primary at restart'}`,
        );
        continue;
      }
      try {
        plugin.reconfigure(service, use.options);
      } catch (err) {
        log.error({ err, service: sc.name, plugin: name }, 'plugin could not take its reloaded options');
      }
    }
  }
  for (const use of next.plugins) {
    const old = previous.plugins.find((p) => p.name === use.name);
    if (old === undefined) {
      log.warn(
        { plugin: use.name },
        `process plugin added: ${mode === 'single' ? 'it runs' : 'workers run it now,'} ${later}`,
      );
      continue;
    }
    if (isDeepStrictEqual(old.options, use.options)) continue;
    const plugin = use.plugin as ProcessPlugin;
    if (typeof plugin.reconfigure !== 'function') {
      log.warn(
        { plugin: use.name },
        `process plugin options changed: ${mode === 'single' ? 'they take effect' : 'workers use them now,'} ${later}`,
      );
      continue;
    }
    try {
      plugin.reconfigure(runtime, use.options);
    } catch (err) {
      log.error({ err, plugin: use.name }, 'plugin could not take its reloaded options');
    }
  }
  for (const old of previous.plugins)
    if (!next.plugins.some((p) => p.name === old.name))
      log.warn(
        { plugin: old.name },
        mode === 'single'
          ? 'process plugin removed: it keeps running until restart'
          : 'process plugin removed: workers dropped it, the primary keeps it until restart',
      );
}

function controlPlane(uses: PluginUse[]): Map<string, PluginUse> {
  return new Map(uses.filter((u) => (u.plugin as ServicePlugin).runsIn === 'any').map((u) => [u.name, u]));
}
