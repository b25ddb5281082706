import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseDuration } from '../duration.js';
import { DEFAULT_PLUGIN_TIMEOUT } from '../plugin-timeout.js';
import { composeSchema } from './compose-schema.js';
import { ConfigError } from './errors.js';
import { loadConfigPlugins } from './load-plugins.js';
import { reportSchemaErrors } from './schema-messages.js';
import {
  buildProcessPlugins,
  buildService,
  checkListenConflicts,
  checkProcessDependencies,
} from './semantic-checks.js';
import { INHERITED, type ProcessSettings } from './settings.js';
import type { LoadOptions, SwitchyardConfig } from './types.js';
import { compileValidator } from './validator.js';
import { YamlSource } from './yaml-source.js';

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
  if (src.issues.length > 0) throw new ConfigError(src.issues);
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    src.report([], 'the config must be a mapping (listen:, backends:, plugins: ...)');
    throw new ConfigError(src.issues);
  }
  const baseDir = options.baseDir ?? process.cwd();
  const multi = data.services !== undefined;

  // Plugins first: their schemas are part of what the document is validated against.
  // Before validation: a plugin_timeout the schema will reject counts as the default meanwhile.
  const importTimeout = parseDuration(data.plugin_timeout) ?? DEFAULT_PLUGIN_TIMEOUT;
  const { loaded, failed } = await loadConfigPlugins(src, data, baseDir, importTimeout);

  // Keys as written, before defaults fill them in (services inherit the root's explicit ones).
  const written = new Map<unknown, Set<string>>();
  written.set(data, new Set(Object.keys(data)));
  if (multi && data.services !== null && typeof data.services === 'object')
    for (const svc of Object.values(data.services as object))
      if (svc !== null && typeof svc === 'object') written.set(svc, new Set(Object.keys(svc)));

  const validate = compileValidator(composeSchema(loaded));
  const beforeSchema = src.issues.length;
  if (!validate(data)) reportSchemaErrors(src, validate.errors ?? [], failed);
  // Plugin load errors alone still let the semantic checks below run, so all issues come at once.
  if (src.issues.length > beforeSchema) throw new ConfigError(dedupe(src.issues));

  const config: SwitchyardConfig = {
    file,
    log_level: data.log_level as string | undefined,
    workers: (data.workers as number | 'auto' | undefined) ?? 1,
    scheduling: (data.scheduling as ProcessSettings['scheduling'] | undefined) ?? 'auto',
    // 0: Node's own default (no flag).
    worker_semi_space: (data.worker_semi_space as number | undefined) || undefined,
    plugin_timeout: data.plugin_timeout as number,
    stop_grace: data.stop_grace as number,
    services: [],
    plugins: [],
  };
  // What plugins' `check` may need of the rest of the config: every service, and whether it listens.
  const services = new Map<string, { listens: boolean }>();
  if (multi) {
    for (const [name, svc] of Object.entries(data.services as Record<string, Record<string, unknown>>))
      services.set(name, { listens: svc.listen !== undefined });
    const rootWritten = written.get(data)!;
    for (const key of ['listen', 'backends']) {
      if (rootWritten.has(key))
        src.report([key], `"${key}" belongs under a service when "services" is used`, true);
    }
    for (const [name, svc] of Object.entries(data.services as Record<string, Record<string, unknown>>)) {
      const own = written.get(svc) ?? new Set();
      for (const key of INHERITED) if (rootWritten.has(key) && !own.has(key)) svc[key] = data[key];
      config.services.push(
        buildService(src, name, svc, ['services', name], loaded, { service: name, services }),
      );
    }
    // Without `listen` a service is a pool that routers send sessions to; one must accept them.
    if (![...services.values()].some((s) => s.listens))
      src.report(
        ['services'],
        'no service has "listen": at least one must accept connections (a service without it is a pool that routers send sessions to)',
        true,
      );
    config.plugins = buildProcessPlugins(
      src,
      data.plugins as Record<string, unknown> | undefined,
      loaded,
      true,
      { services },
    );
  } else {
    if (data.listen === undefined) src.report([], 'missing required key "listen" (or a "services" map)');
    services.set('default', { listens: true });
    config.services.push(buildService(src, 'default', data, [], loaded, { service: 'default', services }));
    config.plugins = buildProcessPlugins(
      src,
      data.plugins as Record<string, unknown> | undefined,
      loaded,
      false,
      { services },
    );
  }
  checkProcessDependencies(src, config, multi);
  checkListenConflicts(src, config);
  if (src.issues.length > 0) throw new ConfigError(dedupe(src.issues));
  return config;
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
