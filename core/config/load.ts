import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseAddress, parseListenAddress } from '../address.js';
import type { SchedulingSetting } from '../cluster/scheduling.js';
import { type OptionIssue, type Plugin, someProvides, TLS_UPSTREAM, UPSTREAM_TLS } from '../plugin.js';
import { loadPlugin } from '../plugin-loader.js';
import type { BackendSpec } from '../types.js';
import { composeSchema, DEFAULT_BALANCER } from './compose-schema.js';
import { ConfigError } from './errors.js';
import { compileValidator } from './validator.js';
import { YamlSource } from './yaml-source.js';

/** Service keys that, written at the root of a `services:` config, are defaults for every service. */
export const INHERITED = [
  'connect_timeout',
  'idle_timeout',
  'retries',
  'drain_timeout',
  'max_connections',
  'tcp_nodelay',
] as const;

/** One plugin enabled in a service (or the process), with its validated options. */
export interface PluginUse {
  name: string;
  plugin: Plugin;
  options: Record<string, unknown>;
}

/** One service after validation, defaults and duration parsing (all durations in ms). */
export interface ServiceConfig {
  name: string;
  listen: string[];
  backends: BackendSpec[];
  connect_timeout: number;
  idle_timeout: number;
  retries: number;
  drain_timeout: number;
  max_connections: number;
  tcp_nodelay: boolean;
  /** Service-scope plugins in config order; exactly one is a balancer. */
  plugins: PluginUse[];
}

export interface SwitchyardConfig {
  /** Absolute path of the file it came from (or a label for text configs). */
  file: string;
  log_level?: string;
  /** Worker processes: 1 runs everything in one process; see docs/multi-process.md. */
  workers: number | 'auto';
  /** How connections reach workers when workers > 1 (core/cluster/scheduling.ts). */
  scheduling: SchedulingSetting;
  /** Workers' `--max-semi-space-size` in MiB; undefined: Node's default. */
  worker_semi_space?: number;
  /** In config order; the first is the default service for APIs that take a service name. */
  services: ServiceConfig[];
  /** Process-scope plugins. */
  plugins: PluginUse[];
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** Folder that relative plugin paths resolve against; default the config file's folder. */
  baseDir?: string;
}

/** Reads, parses and validates a config file. Throws `ConfigError` with every issue found. */
export async function loadConfigFile(file: string, options: LoadOptions = {}): Promise<SwitchyardConfig> {
  const path = resolve(file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new ConfigError([
      { file, line: 0, col: 0, path: '', message: `cannot read config: ${e.code ?? e.message}` },
    ]);
  }
  return loadConfigText(text, file, { baseDir: dirname(path), ...options });
}

/** Like `loadConfigFile` for text already in memory; `file` labels the messages. */
export async function loadConfigText(
  text: string,
  file: string,
  options: LoadOptions = {},
): Promise<SwitchyardConfig> {
  const src = new YamlSource(file, text, options.env ?? process.env);
  if (src.issues.length > 0) throw new ConfigError(src.issues);
  const data = src.toJS() as Record<string, unknown> | null;
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    src.report([], 'the config must be a mapping (listen:, backends:, plugins: ...)');
    throw new ConfigError(src.issues);
  }
  const baseDir = options.baseDir ?? process.cwd();
  const multi = data.services !== undefined;

  // Plugins first: their schemas are part of what the document is validated against.
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
        loaded.set(name, await loadPlugin(name, baseDir));
      } catch (err) {
        failed.add(name);
        src.report([...path, name], (err as Error).message, true);
      }
    }
  }
  if (!loaded.has(DEFAULT_BALANCER))
    loaded.set(DEFAULT_BALANCER, await loadPlugin(DEFAULT_BALANCER, baseDir));

  // Keys as written, before defaults fill them in (services inherit the root's explicit ones).
  const written = new Map<unknown, Set<string>>();
  written.set(data, new Set(Object.keys(data)));
  if (multi && data.services !== null && typeof data.services === 'object')
    for (const svc of Object.values(data.services as object))
      if (svc !== null && typeof svc === 'object') written.set(svc, new Set(Object.keys(svc)));

  const validate = compileValidator(composeSchema(loaded));
  const beforeSchema = src.issues.length;
  if (!validate(data)) {
    for (const e of validate.errors ?? []) {
      const path = pointerToPath(e.instancePath);
      if (e.keyword === 'additionalProperties') {
        const prop = (e.params as { additionalProperty: string }).additionalProperty;
        if (path[path.length - 1] === 'plugins' && failed.has(prop)) continue; // reported by the loader
        src.report([...path, prop], `unknown key "${prop}"${suggest(prop, e.parentSchema)}`, true);
      } else if (e.keyword === 'required') {
        src.report(
          path,
          `missing required key "${(e.params as { missingProperty: string }).missingProperty}"`,
        );
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
  // Plugin load errors alone still let the semantic checks below run, so all issues come at once.
  if (src.issues.length > beforeSchema) throw new ConfigError(dedupe(src.issues));

  const config: SwitchyardConfig = {
    file,
    log_level: data.log_level as string | undefined,
    workers: (data.workers as number | 'auto' | undefined) ?? 1,
    scheduling: (data.scheduling as SchedulingSetting | undefined) ?? 'auto',
    // 0: Node's own default (no flag).
    worker_semi_space: (data.worker_semi_space as number | undefined) || undefined,
    services: [],
    plugins: [],
  };
  if (multi) {
    const rootWritten = written.get(data)!;
    for (const key of ['listen', 'backends']) {
      if (rootWritten.has(key))
        src.report([key], `"${key}" belongs under a service when "services" is used`, true);
    }
    for (const [name, svc] of Object.entries(data.services as Record<string, Record<string, unknown>>)) {
      const own = written.get(svc) ?? new Set();
      for (const key of INHERITED) if (rootWritten.has(key) && !own.has(key)) svc[key] = data[key];
      config.services.push(buildService(src, name, svc, ['services', name], loaded));
    }
    config.plugins = buildProcessPlugins(
      src,
      data.plugins as Record<string, unknown> | undefined,
      loaded,
      true,
    );
  } else {
    if (data.listen === undefined) src.report([], 'missing required key "listen" (or a "services" map)');
    config.services.push(buildService(src, 'default', data, [], loaded));
    config.plugins = buildProcessPlugins(
      src,
      data.plugins as Record<string, unknown> | undefined,
      loaded,
      false,
    );
  }
  checkProcessDependencies(src, config, multi);
  checkListenConflicts(src, config);
  if (src.issues.length > 0) throw new ConfigError(dedupe(src.issues));
  return config;
}

function buildService(
  src: YamlSource,
  name: string,
  raw: Record<string, unknown>,
  at: Array<string | number>,
  loaded: Map<string, Plugin>,
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
  const seen = new Set<string>();
  backends.forEach((b, i) => {
    const parsed = parseAddress(b.address);
    if (typeof parsed === 'string') src.report([...at, 'backends', i, 'address'], parsed);
    else if (seen.has(`${parsed.host}:${parsed.port}`))
      src.report([...at, 'backends', i, 'address'], 'duplicate backend address');
    else seen.add(`${parsed.host}:${parsed.port}`);
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
    checkPluginOptions(src, [...at, 'plugins', pname], plugin, options);
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
  if (!someProvides(plugins, UPSTREAM_TLS)) {
    backends.forEach((b, i) => {
      if (b.tls === true)
        src.report(
          [...at, 'backends', i, 'tls'],
          `tls: true needs a plugin that dials TLS, e.g. ${TLS_UPSTREAM} (plugins: { ${TLS_UPSTREAM}: {} })`,
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

function buildProcessPlugins(
  src: YamlSource,
  raw: Record<string, unknown> | undefined,
  loaded: Map<string, Plugin>,
  multi: boolean,
): PluginUse[] {
  const uses: PluginUse[] = [];
  for (const [name, options] of Object.entries(raw ?? {})) {
    const plugin = loaded.get(name);
    if (!plugin) continue;
    if (plugin.scope === 'process') {
      checkPluginOptions(src, ['plugins', name], plugin, options);
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
): void {
  if (plugin.check === undefined) return;
  let issues: OptionIssue[] | undefined;
  try {
    issues = plugin.check(options);
  } catch (err) {
    issues = [{ path: [], message: `check failed: ${(err as Error).message}` }];
  }
  for (const issue of issues ?? []) src.report([...at, ...issue.path], issue.message);
}

/** A process plugin's dependencies may be process plugins or, in a single-service config, service ones. */
function checkProcessDependencies(src: YamlSource, config: SwitchyardConfig, multi: boolean): void {
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

function checkListenConflicts(src: YamlSource, config: SwitchyardConfig): void {
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

/** ` (did you mean "x"?)` for a near miss among the allowed keys, else ''. */
function suggest(prop: string, parentSchema: unknown): string {
  const keys = Object.keys((parentSchema as { properties?: object } | undefined)?.properties ?? {});
  let best: string | undefined;
  let bestDistance = 3;
  for (const key of keys) {
    const d = editDistance(prop, key);
    if (d < bestDistance) {
      best = key;
      bestDistance = d;
    }
  }
  return best === undefined ? `; allowed: ${keys.join(', ')}` : ` (did you mean "${best}"?)`;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

function dedupe(issues: ConfigError['issues']): ConfigError['issues'] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const k = `${i.line}:${i.col}:${i.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
