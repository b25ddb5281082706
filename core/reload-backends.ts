import type { Logger } from 'pino';
import { formatAddress, parseAddress } from './address.js';
import type { SwitchyardConfig } from './config/types.js';
import type { Runtime } from './runtime.js';
import type { BackendSpec } from './types.js';

/**
 * On reload, applies to the registry (one process, or a cluster primary's authoritative one)
 * what changed between the old and the new config file: backends added, removed, or
 * re-weighted there. Backends the file did not change keep what the admin API did to them
 * (drained, weight, added at run time), as an operator expects from a reload. Services new in
 * the file are left to a restart.
 */
export function reconcileConfigBackends(
  runtime: Runtime,
  previous: SwitchyardConfig,
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
    const before = byAddress(previous.services.find((s) => s.name === sc.name)?.backends ?? []);
    const after = byAddress(sc.backends);
    const registry = service.backends;
    try {
      for (const address of before.keys())
        if (!after.has(address) && registry.get(address)) registry.remove(address);
      for (const [address, spec] of after) {
        const existing = registry.get(address);
        const old = before.get(address);
        if (!existing) {
          if (!old) registry.add(spec);
        } else if (old === undefined || (old.weight ?? 1) !== (spec.weight ?? 1)) {
          registry.setWeight(address, spec.weight ?? 1);
        }
      }
    } catch (err) {
      log.error({ err, service: sc.name }, 'cannot apply the reloaded backends to the registry');
    }
  }
}

function byAddress(specs: BackendSpec[]): Map<string, BackendSpec> {
  return new Map(specs.map((s) => [canonical(s.address), s]));
}

/** The registry keys backends by canonical address; config text may differ in spelling. */
function canonical(address: string): string {
  const parsed = parseAddress(address);
  return typeof parsed === 'string' ? address : formatAddress(parsed.host, parsed.port);
}
