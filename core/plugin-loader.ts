import { existsSync, readdirSync, readFileSync, type Stats, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isSwitchyardError, PluginError, SwitchyardError } from './errors.js';
import { describeFileKind } from './file-kind.js';
import type { Plugin } from './plugin.js';
import { checkPluginShape } from './plugin-shape.js';
import { DEFAULT_PLUGIN_TIMEOUT, formatMs, withTimeout } from './plugin-timeout.js';

const BUILTIN_NAME = /^[a-z0-9][a-z0-9-]*$/;

/** Where a built-in plugin's entry lives (compiled `.js`, or `.ts` when run from source). */
export function builtinPluginEntry(name: string): URL | undefined {
  if (!BUILTIN_NAME.test(name)) return undefined;
  for (const ext of ['js', 'ts']) {
    const url = new URL(`../plugins/${name}/index.${ext}`, import.meta.url);
    if (existsSync(url)) return url;
  }
  return undefined;
}

/** Names of the built-in plugins (folders of plugins/ with an entry file), sorted. */
export function builtinPluginNames(): string[] {
  const dir = new URL('../plugins/', import.meta.url);
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && builtinPluginEntry(d.name) !== undefined)
    .map((d) => d.name)
    .sort();
}

const cache = new Map<string, Plugin>();

/**
 * A plugin path may name a file or a package folder (its package.json `main`, else index.js).
 * Anything else (a FIFO, a device, a socket) is refused: reading it could block forever.
 */
function resolvePluginPath(path: string): string {
  if (!existsSync(path))
    throw new PluginError(`plugin file ${path} does not exist`, 'SWITCHYARD_E_PLUGIN_NOT_FOUND');
  const st = statSync(path);
  if (st.isFile()) return path;
  if (!st.isDirectory()) throw notAFile(path, st);
  let main = 'index.js';
  const manifest = join(path, 'package.json');
  if (existsSync(manifest)) {
    const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { main?: string; exports?: unknown };
    const exp = typeof pkg.exports === 'string' ? pkg.exports : undefined;
    main = exp ?? pkg.main ?? main;
  }
  const entry = join(path, main);
  if (!existsSync(entry))
    throw new PluginError(`plugin folder ${path} has no ${main}`, 'SWITCHYARD_E_PLUGIN_NOT_FOUND');
  const entryStat = statSync(entry);
  if (!entryStat.isFile()) throw notAFile(entry, entryStat);
  return entry;
}

function notAFile(path: string, st: Stats): PluginError {
  const kind = describeFileKind(st);
  return new PluginError(
    `plugin file ${path} is ${kind}, not a regular file or package folder`,
    'SWITCHYARD_E_PLUGIN_INVALID',
  );
}

/**
 * Loads a plugin by built-in short name, by path (relative to `baseDir`, the config file's
 * folder) or by package name. Throws `PluginError` with a message fit for a config error, or
 * a SWITCHYARD_E_PLUGIN_TIMEOUT error when the module does not finish loading within
 * `timeoutMs` (a top-level `await` that never settles).
 */
export async function loadPlugin(
  name: string,
  baseDir: string,
  timeoutMs = DEFAULT_PLUGIN_TIMEOUT,
): Promise<Plugin> {
  const key = `${baseDir}\0${name}`;
  const cached = cache.get(key);
  if (cached) return cached;
  let url: string | undefined = builtinPluginEntry(name)?.href;
  if (!url) {
    if (name.startsWith('.') || isAbsolute(name)) {
      url = pathToFileURL(resolvePluginPath(resolve(baseDir, name))).href;
    } else if (/^(@[a-z0-9._-]+\/)?[a-z0-9._-]+(\/[A-Za-z0-9._/-]+)?$/.test(name)) {
      try {
        url = pathToFileURL(createRequire(join(baseDir, 'config.js')).resolve(name)).href;
      } catch {
        url = name; // ESM-only packages: let import() resolve it from here
      }
    } else {
      throw new PluginError(
        `"${name}" is not a plugin name, path or package name`,
        'SWITCHYARD_E_PLUGIN_NOT_FOUND',
      );
    }
  }
  let mod: Record<string, unknown>;
  try {
    mod = await withTimeout(
      import(url) as Promise<Record<string, unknown>>,
      timeoutMs,
      () =>
        new SwitchyardError(
          'SWITCHYARD_E_PLUGIN_TIMEOUT',
          `plugin "${name}" did not finish loading within ${formatMs(timeoutMs)} (its module's top level is still running or waiting); raise plugin_timeout if it needs longer`,
        ),
    );
  } catch (err) {
    if (isSwitchyardError(err, 'SWITCHYARD_E_PLUGIN_TIMEOUT')) throw err;
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_MODULE_NOT_FOUND' && url === name)
      throw new PluginError(
        `unknown plugin "${name}" (not built in, and no package of that name is installed)`,
        'SWITCHYARD_E_PLUGIN_NOT_FOUND',
      );
    throw new PluginError(`plugin "${name}" failed to load: ${e.message}`, 'SWITCHYARD_E_PLUGIN_INVALID');
  }
  const plugin = (mod.default ?? mod.plugin) as Plugin;
  const problem = checkPluginShape(plugin);
  if (problem) throw new PluginError(`plugin "${name}": ${problem}`, 'SWITCHYARD_E_PLUGIN_INVALID');
  cache.set(key, plugin);
  return plugin;
}
