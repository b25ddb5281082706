import { backendIdentity, parseListenAddress } from '../address.js';
import { BUILTIN_PROVIDER, someProvides, UPSTREAM_TLS } from '../capabilities.js';
import type { CheckContext, OptionIssue, Plugin } from '../plugin.js';
import type { BackendSpec } from '../types.js';
import { checkBackendFieldsUse } from './backend-fields.js';
import { backendOptionOwners, checkBackendOptionUse } from './backend-options.js';
import { DEFAULT_BALANCER } from './compose-schema.js';
import type { PluginUse, ServiceConfig, SwitchyardConfig } from './types.js';
import type { YamlSource } from './yaml-source.js';

/**
 * What the schema cannot say about a config, checked once it validates: addresses, duplicate
 * backends and listeners, one balancer per service, plugin dependencies and capabilities.
 * Each problem is reported at its place in `src`; the builders return what they could build.
 */

export function buildService(
  src: YamlSource,
  name: string,
  raw: Record<string, unknown>,
  at: Array<string | number>,
  loaded: Map<string, Plugin>,
  context: CheckContext,
): ServiceConfig {
  const listen = (
    Array.isArray(raw.listen) ? raw.listen : raw.listen === undefined ? [] : [raw.listen]
  ) as string[];
  listen.forEach((address, i) => {
    const parsed = parseListenAddress(address);
    if (typeof parsed === 'string')
      src.report(Array.isArray(raw.listen) ? [...at, 'listen', i] : [...at, 'listen'], parsed);
  });
  const backends = (raw.backends ?? []) as BackendSpec[];
  // One backend per identity (core/address.ts): other spellings of an address are duplicates.
  const seen = new Map<string, number>();
  backends.forEach((b, i) => {
    const identity = backendIdentity(b.address);
    if ('error' in identity) {
      src.report([...at, 'backends', i, 'address'], identity.error);
      return;
    }
    const first = seen.get(identity.address);
    if (first === undefined) seen.set(identity.address, i);
    else
      src.report(
        [...at, 'backends', i, 'address'],
        `duplicate backend: ${identity.address} is already backends[${first}]${b.address === identity.address ? '' : ` (${JSON.stringify(b.address)} is the same address)`}`,
      );
  });

  const plugins: PluginUse[] = [];
  const rawPlugins = (raw.plugins ?? {}) as Record<string, Record<string, unknown>>;
  let balancer: string | undefined;
  for (const [pname, options] of Object.entries(rawPlugins)) {
    const plugin = loaded.get(pname);
    if (!plugin || plugin.scope === 'process') continue;
    if (plugin.kind === 'balancer') {
      if (balancer !== undefined) {
        src.report(
          [...at, 'plugins', pname],
          `two balancers: "${balancer}" and "${pname}"; enable exactly one`,
          true,
        );
        continue;
      }
      balancer = pname;
    }
    checkPluginOptions(src, [...at, 'plugins', pname], plugin, options, context);
    plugins.push({ name: pname, plugin, options });
  }
  if (balancer === undefined)
    plugins.unshift({ name: DEFAULT_BALANCER, plugin: loaded.get(DEFAULT_BALANCER)!, options: {} });
  for (const use of plugins) {
    for (const dep of use.plugin.dependencies ?? []) {
      const present = plugins.some((p) => p.name === dep || p.plugin.name === dep);
      if (!present)
        src.report(
          [...at, 'plugins', use.name],
          `plugin "${use.name}" needs plugin "${dep}" enabled too`,
          true,
        );
    }
  }
  const owners = backendOptionOwners(loaded);
  checkBackendOptionUse(src, backends, plugins, owners, at);
  checkBackendFieldsUse(src, plugins, owners, at);
  if (!someProvides(plugins, UPSTREAM_TLS)) {
    const tls = BUILTIN_PROVIDER[UPSTREAM_TLS];
    backends.forEach((b, i) => {
      if (b.tls === true)
        src.report(
          [...at, 'backends', i, 'tls'],
          `tls: true needs a plugin that dials TLS, e.g. ${tls} (plugins: { ${tls}: {} })`,
        );
    });
  }
  return {
    name,
    listen,
    backends,
    connect_timeout: raw.connect_timeout as number,
    idle_timeout: raw.idle_timeout as number,
    retries: raw.retries as number,
    drain_timeout: raw.drain_timeout as number,
    max_connections: raw.max_connections as number,
    tcp_nodelay: raw.tcp_nodelay as boolean,
    plugins,
  };
}

export function buildProcessPlugins(
  src: YamlSource,
  raw: Record<string, unknown> | undefined,
  loaded: Map<string, Plugin>,
  multi: boolean,
  context: CheckContext,
): PluginUse[] {
  const uses: PluginUse[] = [];
  for (const [name, options] of Object.entries(raw ?? {})) {
    const plugin = loaded.get(name);
    if (!plugin) continue;
    if (plugin.scope === 'process') {
      checkPluginOptions(src, ['plugins', name], plugin, options, context);
      uses.push({ name, plugin, options: options as Record<string, unknown> });
    } else if (multi)
      src.report(
        ['plugins', name],
        `"${name}" applies to one service; list it under services.<name>.plugins`,
        true,
      );
  }
  return uses;
}

/** Reports what a plugin's own `check` finds in its (schema-valid) options. */
function checkPluginOptions(
  src: YamlSource,
  at: Array<string | number>,
  plugin: Plugin,
  options: unknown,
  context: CheckContext,
): void {
  if (plugin.check === undefined) return;
  let issues: OptionIssue[] | undefined;
  try {
    issues = plugin.check(options, context);
  } catch (err) {
    issues = [{ path: [], message: `check failed: ${(err as Error).message}` }];
  }
  for (const issue of issues ?? []) src.report([...at, ...issue.path], issue.message);
}

/** A process plugin's dependencies may be process plugins or, in a single-service config, service ones. */
export function checkProcessDependencies(src: YamlSource, config: SwitchyardConfig, multi: boolean): void {
  const enabled = new Set<string>();
  for (const use of config.plugins) enabled.add(use.name).add(use.plugin.name);
  if (!multi) for (const use of config.services[0]?.plugins ?? []) enabled.add(use.name).add(use.plugin.name);
  for (const use of config.plugins) {
    for (const dep of use.plugin.dependencies ?? []) {
      if (!enabled.has(dep))
        src.report(['plugins', use.name], `plugin "${use.name}" needs plugin "${dep}" enabled too`, true);
    }
  }
}

export function checkListenConflicts(src: YamlSource, config: SwitchyardConfig): void {
  const seen = new Map<string, string>();
  config.services.forEach((svc) => {
    svc.listen.forEach((address) => {
      const parsed = parseListenAddress(address);
      if (typeof parsed === 'string' || parsed.port === 0) return;
      const key = `${parsed.host}:${parsed.port}`;
      const other = seen.get(key);
      if (other !== undefined) {
        const at =
          config.services.length > 1 || svc.name !== 'default'
            ? ['services', svc.name, 'listen']
            : ['listen'];
        src.report(at, `${address} is already a listener of service "${other}"`);
      } else seen.set(key, svc.name);
    });
  });
}
