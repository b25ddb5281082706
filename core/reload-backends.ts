import type { Logger } from 'pino';
import { ORIGIN_CONFIG } from './backend-origin.js';
import type { SwitchyardConfig } from './config/types.js';
import type { Runtime } from './runtime.js';

/**
 * On reload, applies to the registry (one process, or a cluster primary's authoritative one)
 * what changed in the config file's backend lists: backends of origin `config` are added,
 * removed (drained) or changed as the file now says; backends the file did not change keep
 * what the admin API did to them (drained, weight), as an operator expects from a reload.
 * Backends of other origins (added through the API, or by a discovery source) are never
 * touched. A service whose backends come from an exclusive source (etcd-registry) ignores
 * the file's list. Services new in the file are left to a restart.
 */
export function reconcileConfigBackends(
  runtime: Runtime,
  _previous: SwitchyardConfig,
  next: SwitchyardConfig,
  log: Logger,
): void {
  for (const sc of next.services) {
    const service = runtime.services.get(sc.name);
    if (!service) {
      log.warn(
        { service: sc.name },
        'new service in the reloaded config: workers serve it, the admin API will not see it until a restart',
      );
      continue;
    }
    const exclusive = service.exclusiveSource;
    if (exclusive !== undefined) {
      if (JSON.stringify(service.config.backends) !== JSON.stringify(sc.backends))
        log.warn(
          { service: sc.name, source: exclusive },
          `the reloaded config changes the backends of a service whose backends come from ${exclusive}; ignored (change them there)`,
        );
      continue;
    }
    const result = service.backends.reconcile(ORIGIN_CONFIG, sc.backends);
    for (const c of result.conflicts)
      log.warn(
        { service: sc.name, backend: c.address, owner: c.owner },
        'the reloaded config lists a backend another origin owns; it stays theirs',
      );
    for (const i of result.invalid)
      log.error(
        { service: sc.name, backend: i.address, error: i.error },
        'cannot apply a reloaded backend to the registry',
      );
  }
}
