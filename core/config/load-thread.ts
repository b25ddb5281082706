import { dirname, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { SwitchyardError, type SwitchyardErrorCode } from '../errors.js';
import { loadPlugin } from '../plugin-loader.js';
import { ConfigError, type ConfigIssue } from './errors.js';
import type { PluginUse, SwitchyardConfig } from './types.js';

/**
 * What the config thread (core/config/load-thread-entry.ts) posts back: the loaded config with
 * each plugin named instead of held (plugin objects hold functions, which cannot cross
 * threads), or the error, as plain data.
 */
export type ThreadReply =
  | { ok: true; config: PortableConfig }
  | { ok: false; issues: ConfigIssue[] }
  | { ok: false; message: string; code?: string };

/** A `SwitchyardConfig` whose plugin uses carry no plugin object. */
export type PortableConfig = Omit<SwitchyardConfig, 'plugins' | 'services'> & {
  plugins: PortablePluginUse[];
  services: Array<Omit<SwitchyardConfig['services'][number], 'plugins'> & { plugins: PortablePluginUse[] }>;
};
type PortablePluginUse = Omit<PluginUse, 'plugin'>;

/**
 * Reads, parses and validates a config file as `loadConfigFile` does, in a worker thread, and
 * then loads the plugins it names here.
 *
 * Why a thread: the YAML parser, ajv, the compiled validator, the plugins' checks and the
 * bytecode all of them leave behind are ~2-3 MiB of V8 heap that the data plane would carry
 * for its whole life, and every mark-compact walks it. A bulk stream triggers a mark-compact
 * every few dozen MB of socket buffers, so a bigger heap costs throughput directly (measured:
 * docs/benchmarks.md, "One process against the naive pipe"). The thread's isolate goes away
 * with everything it loaded; this isolate only imports the plugin modules it runs.
 *
 * Throws `ConfigError` with every issue found, as `loadConfigFile` does.
 */
export async function loadConfigInThread(file: string): Promise<SwitchyardConfig> {
  const reply = await ask(takeThread(), file);
  if (!reply.ok) {
    if ('issues' in reply) throw new ConfigError(reply.issues);
    if (reply.code?.startsWith('SWITCHYARD_E_'))
      throw new SwitchyardError(reply.code as SwitchyardErrorCode, reply.message);
    throw new Error(reply.message);
  }
  return withPlugins(reply.config);
}

let warm: Worker | undefined;

/**
 * Starts the config thread ahead of time: it boots and imports the loader (YAML, ajv) on the
 * other core while this thread imports the runtime, which takes most of the start-up's time
 * otherwise spent twice. The next `loadConfigInThread` uses it; unused, it does not keep the
 * process alive (but holds its isolate: cluster workers, which never load a config, skip it).
 */
export function prestartConfigThread(): void {
  warm ??= startThread();
  warm.unref();
}

function takeThread(): Worker {
  const worker = warm ?? startThread();
  warm = undefined;
  worker.ref();
  return worker;
}

function startThread(): Worker {
  const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
  const worker = new Worker(new URL(`./load-thread-entry.${ext}`, import.meta.url));
  // Until it is asked: an error then is reported by `ask` (the thread is gone either way).
  worker.on('error', () => {});
  return worker;
}

/** Sends the file to load; the thread answers once and is then ended. */
function ask(worker: Worker, file: string): Promise<ThreadReply> {
  return new Promise((resolveReply, reject) => {
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      fn();
      // A plugin module's top level may have left a timer or handle in the thread.
      void worker.terminate();
    };
    worker.once('message', (reply: ThreadReply) => settle(() => resolveReply(reply)));
    worker.once('error', (err) => settle(() => reject(err)));
    worker.once('exit', (code) =>
      settle(() => reject(new Error(`the config thread exited (code ${code}) before it answered`))),
    );
    worker.postMessage({ file });
  });
}

/**
 * A portable config with its plugin objects: each loaded by the same name from the same folder
 * (the config file's) the loader used, so the same module, bounded by the config's
 * plugin_timeout as there. Cluster workers get their config from the primary this way.
 */
export async function withPlugins(config: PortableConfig): Promise<SwitchyardConfig> {
  const baseDir = dirname(resolve(config.file));
  const attach = async (uses: PortablePluginUse[]): Promise<PluginUse[]> => {
    const out: PluginUse[] = [];
    for (const use of uses)
      out.push({ ...use, plugin: await loadPlugin(use.name, baseDir, config.plugin_timeout) });
    return out;
  };
  const services = [];
  for (const service of config.services)
    services.push({ ...service, plugins: await attach(service.plugins) });
  return { ...config, services, plugins: await attach(config.plugins) };
}

/**
 * The thread's side: a loaded config with its plugin objects left out. Throws when a plugin's
 * `check` left something in its options that is not plain data: a function cannot cross
 * threads, and a class instance would arrive as a plain object without its methods.
 */
export function toPortable(config: SwitchyardConfig): PortableConfig {
  const strip = (uses: readonly PluginUse[]): PortablePluginUse[] =>
    uses.map(({ plugin: _plugin, ...use }) => {
      const problem = notPlainData(use.options, '');
      if (problem !== undefined)
        throw new Error(
          `plugin "${use.name}": its options hold ${problem}; options must stay plain data (objects, arrays, strings, numbers, booleans, null): build other values in apply()`,
        );
      return use;
    });
  return {
    ...config,
    services: config.services.map((s) => ({ ...s, plugins: strip(s.plugins) })),
    plugins: strip(config.plugins),
  };
}

function notPlainData(value: unknown, path: string): string | undefined {
  if (value === null || ['string', 'number', 'boolean', 'undefined'].includes(typeof value)) return undefined;
  const at = path === '' ? '' : ` at ${path}`;
  if (typeof value !== 'object') return `a ${typeof value}${at}`;
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const problem = notPlainData(item, `${path}[${i}]`);
      if (problem !== undefined) return problem;
    }
    return undefined;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null)
    return `a ${(value as object).constructor?.name ?? 'class'} object${at}`;
  for (const [key, item] of Object.entries(value)) {
    const problem = notPlainData(item, path === '' ? key : `${path}.${key}`);
    if (problem !== undefined) return problem;
  }
  return undefined;
}
