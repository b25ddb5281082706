import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import { ConfigError, formatIssue } from './config/errors.js';
import { loadConfigInThread } from './config/load-thread.js';
import { INHERITED } from './config/settings.js';
import type { ServiceConfig, SwitchyardConfig } from './config/types.js';
import { reconcileConfigBackends } from './reload-backends.js';
import { reconfigurePlugins } from './reload-plugins.js';
import type { Runtime } from './runtime.js';

/** Service keys a running process cannot change in place: its listeners and every pipeline setting. */
const RESTART_KEYS = ['listen', ...INHERITED] as const satisfies readonly (keyof ServiceConfig)[];

/**
 * SIGHUP with one process (`workers: 1`): re-reads and validates the config file. Invalid:
 * every issue is logged and nothing changes. Valid: what can change in place does — backends
 * the file added, removed or re-weighted (as the cluster primary does), and plugin options of
 * plugins with `reconfigure` (health-check, admin-api's token) — and whatever else changed is
 * logged as taking effect at restart. No session is touched. Resolves with the config now in
 * effect for the next reload to compare against.
 */
export async function reloadSingleProcess(
  runtime: Runtime,
  current: SwitchyardConfig,
  log: Logger,
): Promise<SwitchyardConfig> {
  let next: SwitchyardConfig;
  try {
    next = await loadConfigInThread(current.file);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const issue of err.issues) log.error({ issue: formatIssue(issue) }, 'invalid config');
    log.error(
      { file: current.file, problems: err.issues.length },
      'reload rejected: the config is invalid; keeping the running config',
    );
    return current;
  }
  const restartOnly = restartOnlyChanges(current, next);
  reconcileConfigBackends(runtime, current, next, log);
  reconfigurePlugins(runtime, current, next, log, 'single');
  if (restartOnly.length > 0)
    log.warn({ changes: restartOnly }, 'reloaded in part: these changes take effect at restart');
  log.info({ file: current.file }, 'reloaded: backends and plugin options applied');
  return next;
}

/** What changed that one running process cannot apply (listed for the operator). */
export function restartOnlyChanges(previous: SwitchyardConfig, next: SwitchyardConfig): string[] {
  const out: string[] = [];
  if (previous.workers !== next.workers) out.push('workers');
  for (const sc of next.services) {
    const before = previous.services.find((s) => s.name === sc.name);
    if (!before) {
      out.push(`services.${sc.name} (new service)`);
      continue;
    }
    for (const key of RESTART_KEYS)
      if (!isDeepStrictEqual(before[key], sc[key])) out.push(`services.${sc.name}.${key}`);
    const was = new Set(before.plugins.map((p) => p.name));
    const now = new Set(sc.plugins.map((p) => p.name));
    for (const name of now) if (!was.has(name)) out.push(`services.${sc.name}.plugins.${name} (added)`);
    for (const name of was) if (!now.has(name)) out.push(`services.${sc.name}.plugins.${name} (removed)`);
  }
  for (const sc of previous.services)
    if (!next.services.some((s) => s.name === sc.name)) out.push(`services.${sc.name} (removed)`);
  return out;
}
