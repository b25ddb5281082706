import { pino } from 'pino';
import type { RuntimeRole } from './cluster/bridge.js';
import type { SwitchyardConfig } from './config/types.js';
import { workerCount } from './os-limits.js';
import { Runtime } from './runtime.js';

/**
 * What `switchyard validate` checks beyond loading the config (which already ran every
 * plugin's `check`): every plugin applied as a start would apply it, in each role a start
 * would run (one process, or a cluster primary and a worker), with nothing started — no
 * listener bound, no connection made. This finds what only `apply` knows (files a plugin
 * reads, the plugin listeners' connection caps together). Returns the first problem, or
 * undefined.
 */
export async function dryRun(config: SwitchyardConfig): Promise<string | undefined> {
  const log = pino({ level: 'silent' });
  const roles: RuntimeRole[] = workerCount(config.workers) > 1 ? ['primary', 'worker'] : ['single'];
  for (const role of roles) {
    try {
      await Runtime.create(config, log, { role });
    } catch (err) {
      const message = (err as Error).message;
      return role === 'single' ? message : `${message} (in the cluster ${role})`;
    }
  }
  return undefined;
}
