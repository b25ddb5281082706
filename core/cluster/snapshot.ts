import type { Logger } from 'pino';
import { sameDialFields } from '../backend-origin.js';
import type { Runtime } from '../runtime.js';
import type { RegistrySnapshot, SnapshotBackend } from './messages.js';

/** The primary's registry as a snapshot. */
export function takeSnapshot(runtime: Runtime, version: number): RegistrySnapshot {
  const services: Record<string, SnapshotBackend[]> = {};
  for (const service of runtime.services.values()) {
    services[service.name] = service.backends.list().map((b) => {
      const entry: SnapshotBackend = {
        spec: b.spec,
        weight: b.weight,
        state: b.state === 'draining' ? 'draining' : 'up',
        origin: b.origin,
      };
      for (const source of runtime.primaryStatusSources) {
        const value = b.status[source];
        if (value === undefined) continue;
        entry.status ??= {};
        entry.status[source] = value;
      }
      return entry;
    });
  }
  return { version, services };
}

/**
 * Before a worker's services start: their config lists become the snapshot's lists, so the
 * backends the primary removed never take a session here, not even the first one. Returns
 * the function that ends the seeding once the services have started.
 */
export function seedFromSnapshot(runtime: Runtime, snapshot: RegistrySnapshot): () => void {
  const seeding = { active: true };
  for (const [name, list] of Object.entries(snapshot.services)) {
    const service = runtime.services.get(name);
    if (!service) continue;
    service.startWith(list.map((e) => ({ spec: { ...e.spec, weight: e.weight }, origin: e.origin })));
    // The primary's statuses (health) too, as each backend is added at start — after its
    // plugins set their initial ones, before the listeners bind — so not even the first
    // session goes to a backend the primary has marked down. Once per worker start; the
    // tap stays inert afterwards (applySnapshot handles later changes).
    const statuses = new Map(
      list.filter((e) => e.status !== undefined).map((e) => [e.spec.address, e.status!]),
    );
    if (statuses.size === 0) continue;
    service.hooks.backendAdded.tap('cluster-seed', (backend) => {
      if (!seeding.active) return;
      const status = statuses.get(backend.address);
      if (status !== undefined)
        for (const [source, value] of Object.entries(status))
          service.setBackendStatus(backend, source, value);
    });
  }
  return () => {
    seeding.active = false;
  };
}

/**
 * Makes a worker's registries equal to the snapshot through the registry API, so balancers,
 * pools and health checks of the worker follow as they do for admin changes in one process;
 * then sets the primary's statuses (health) through `setBackendStatus`, whose hook the
 * worker's plugins follow.
 * Services the snapshot does not name (added by a reload, unknown to the primary) are left alone.
 */
export function applySnapshot(runtime: Runtime, snapshot: RegistrySnapshot, log: Logger): void {
  for (const [name, list] of Object.entries(snapshot.services)) {
    const service = runtime.services.get(name);
    if (!service) continue;
    const registry = service.backends;
    const wanted = new Map(list.map((e) => [e.spec.address, e]));
    try {
      for (const b of registry.list()) if (!wanted.has(b.address)) registry.remove(b.address);
      for (const entry of list) {
        const existing = registry.get(entry.spec.address);
        if (existing === undefined)
          registry.add({ ...entry.spec, weight: entry.weight }, { origin: entry.origin });
        else {
          existing.origin = entry.origin;
          // The primary changed TLS or plugin fields in place (a discovery source did): same here.
          if (!sameDialFields(existing.spec, entry.spec)) {
            existing.spec = { ...entry.spec, address: existing.address };
            if (existing.weight === entry.weight) service.hooks.backendChanged.call(existing);
          }
          if (existing.weight !== entry.weight) registry.setWeight(existing.address, entry.weight);
        }
        registry.setDraining(entry.spec.address, entry.state === 'draining');
      }
      // After the registry calls: a backend added above exists now, and its plugins have set
      // their initial statuses, which the primary's (e.g. health) replace.
      for (const entry of list) {
        if (entry.status === undefined) continue;
        const backend = registry.get(entry.spec.address);
        if (backend === undefined) continue;
        for (const [source, status] of Object.entries(entry.status))
          service.setBackendStatus(backend, source, status);
      }
    } catch (err) {
      log.error({ err, service: name, version: snapshot.version }, 'cannot apply the registry snapshot');
    }
  }
}
