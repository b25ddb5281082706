import { RESTRICTED_STATUSES } from '../backend-status.js';
import type { Runtime } from '../runtime.js';
import type { Service } from '../service.js';
import type { Backend } from '../types.js';
import type { PeerBackend, PeerView, WorkerStats } from './messages.js';

/**
 * For every live worker, what all the *other* workers reported: sessions per backend and
 * statuses per source (bad wins), leaving out the sources the primary sets itself (`owned`).
 * The primary sends each worker its view after every stats round.
 */
export function peerViews(
  live: ReadonlyMap<number, WorkerStats>,
  owned: ReadonlySet<string>,
): Map<number, PeerView> {
  // service → address → { total active, per worker: [id, active, status] }
  const byBackend = new Map<
    string,
    Map<string, { active: number; reports: Array<[number, number, Record<string, string>]> }>
  >();
  for (const [id, stats] of live) {
    for (const [name, s] of Object.entries(stats.services)) {
      let backends = byBackend.get(name);
      if (!backends) {
        backends = new Map();
        byBackend.set(name, backends);
      }
      for (const [address, b] of Object.entries(s.backends)) {
        let entry = backends.get(address);
        if (!entry) {
          entry = { active: 0, reports: [] };
          backends.set(address, entry);
        }
        entry.active += b.active;
        entry.reports.push([id, b.active, b.status]);
      }
    }
  }
  const views = new Map<number, PeerView>();
  for (const id of live.keys()) {
    const view: PeerView = {};
    for (const [name, backends] of byBackend) {
      const out: Record<string, PeerBackend> = {};
      for (const [address, entry] of backends) {
        const own = entry.reports.find((r) => r[0] === id);
        const peer: PeerBackend = { active: entry.active - (own?.[1] ?? 0) };
        for (const [other, , status] of entry.reports) {
          if (other === id) continue;
          for (const [source, value] of Object.entries(status)) {
            if (owned.has(source)) continue;
            const seen = peer.status?.[source];
            if (seen !== undefined && (RESTRICTED_STATUSES.has(seen) || !RESTRICTED_STATUSES.has(value)))
              continue;
            peer.status ??= {};
            peer.status[source] = value;
          }
        }
        out[address] = peer;
      }
      view[name] = out;
    }
    views.set(id, view);
  }
  return views;
}

/**
 * A worker takes its peer view: `backend.peerActive` for balancers, `backend.peerStatus` and
 * the `backendPeerStatus` hook (status `''` when no other worker reports that source any more).
 * Backends the view does not name (no other worker has them yet) get an empty view.
 */
export function applyPeers(runtime: Runtime, view: PeerView): void {
  // Runs in the worker's IPC handler: a throwing tap is contained by the hook itself
  // (CONTAINED_HOOKS in core/hooks.ts), so the other taps and backends still get their view.
  const call = (service: Service, backend: Backend, source: string, status: string) => {
    service.hooks.backendPeerStatus.call(backend, source, status);
  };
  for (const service of runtime.services.values()) {
    const peers = view[service.name];
    for (const backend of service.backends.list()) {
      const p = peers?.[backend.address];
      backend.peerActive = p?.active ?? 0;
      const next = p?.status;
      const current = backend.peerStatus;
      for (const source of Object.keys(current)) {
        if (next?.[source] !== undefined) continue;
        delete current[source];
        call(service, backend, source, '');
      }
      if (next === undefined) continue;
      for (const [source, value] of Object.entries(next)) {
        if (current[source] === value) continue;
        current[source] = value;
        call(service, backend, source, value);
      }
    }
  }
}
