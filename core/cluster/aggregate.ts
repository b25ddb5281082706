import { RESTRICTED_STATUSES } from '../backend-status.js';
import { type ServiceCounters, zeroCounters } from '../counters.js';
import type { Runtime } from '../runtime.js';
import type { Service } from '../service.js';
import type { Backend } from '../types.js';
import type { BackendStats, PeerView, WorkerStats } from './messages.js';
import { peerViews } from './peers.js';

/** Every counter a worker reports, in one place: the zero value defines the set. */
const COUNTERS = Object.keys(zeroServiceCounters()) as readonly (keyof ServiceCounters)[];

type Totals = Pick<BackendStats, 'total' | 'connectFailures' | 'bytesIn' | 'bytesOut'>;

/** The factor source the primary's registry carries the workers' effective weights under. */
export const WORKERS_FACTOR = 'workers';

/**
 * Sums workers' reports into the primary's own Backend objects and service counters, so the
 * admin API, metrics and dashboard show the whole cluster without knowing about it.
 * `active`, `sessions` and `openBytesIn/Out` are sums over live workers; cumulative numbers
 * (totals, bytes, failures, counters) also keep what exited workers last reported, so they
 * never go back. An exited worker's open sessions are gone with it: their bytes so far
 * become closed bytes, so `bytesIn + openBytesIn` does not drop when a worker exits.
 * `effectiveWeight` is `weight` times the mean of the workers' factors (slow-start ramps in
 * each worker from the same events), set as the `workers` factor of the primary's registry;
 * the snapshots carry `weight`, so it never travels back to the workers.
 */
export class StatsAggregator {
  readonly #live = new Map<number, WorkerStats>();
  /** Last reports of exited workers, folded in: service → backend address → totals. */
  readonly #retiredBackends = new Map<string, Map<string, Totals>>();
  readonly #retiredCounters = new Map<string, ServiceCounters>();

  constructor(
    private readonly runtime: Runtime,
    /** Connections the primary itself refused per service (rr dispatcher), added to `overloaded`. */
    private readonly refusedInPrimary: (service: string) => number = () => 0,
  ) {}

  report(workerId: number, stats: WorkerStats): void {
    this.#live.set(workerId, stats);
  }

  /** A live worker's last report (capacity, process), or undefined before its first one. */
  reportOf(workerId: number): WorkerStats | undefined {
    return this.#live.get(workerId);
  }

  /** What each live worker's peers reported (core/cluster/peers.ts). */
  peerViews(): Map<number, PeerView> {
    return peerViews(this.#live, this.runtime.primaryStatusSources);
  }

  /** A worker exited: its sessions are gone, its history stays in the totals. */
  retire(workerId: number): void {
    const last = this.#live.get(workerId);
    this.#live.delete(workerId);
    if (!last) return;
    for (const [name, s] of Object.entries(last.services)) {
      const backends = this.#retiredBackends.get(name) ?? new Map<string, Totals>();
      this.#retiredBackends.set(name, backends);
      for (const [address, b] of Object.entries(s.backends)) {
        const t = backends.get(address) ?? { total: 0, connectFailures: 0, bytesIn: 0, bytesOut: 0 };
        t.total += b.total;
        t.connectFailures += b.connectFailures;
        t.bytesIn += b.bytesIn + b.openBytesIn;
        t.bytesOut += b.bytesOut + b.openBytesOut;
        backends.set(address, t);
      }
      const c = this.#retiredCounters.get(name) ?? zeroServiceCounters();
      for (const k of COUNTERS) c[k] += s.counters[k] ?? 0;
      this.#retiredCounters.set(name, c);
    }
  }

  /** Writes the sums into the primary's services and backends. */
  apply(): void {
    const owned = this.runtime.primaryStatusSources;
    for (const service of this.runtime.services.values()) {
      const counters = { ...(this.#retiredCounters.get(service.name) ?? zeroServiceCounters()) };
      counters.overloaded += this.refusedInPrimary(service.name);
      let sessions = 0;
      const reports: Array<Record<string, BackendStats>> = [];
      for (const stats of this.#live.values()) {
        const s = stats.services[service.name];
        if (!s) continue;
        for (const k of COUNTERS) counters[k] += s.counters[k] ?? 0;
        sessions += s.sessions;
        reports.push(s.backends);
      }
      service.setRemoteTotals(counters, sessions);
      const retired = this.#retiredBackends.get(service.name);
      for (const backend of service.backends.list()) {
        const base = retired?.get(backend.address);
        let active = 0;
        let total = base?.total ?? 0;
        let connectFailures = base?.connectFailures ?? 0;
        let bytesIn = base?.bytesIn ?? 0;
        let bytesOut = base?.bytesOut ?? 0;
        let openBytesIn = 0;
        let openBytesOut = 0;
        let factors = 0;
        let reporting = 0;
        const statuses = new Map<string, string>();
        for (const r of reports) {
          const b = r[backend.address];
          if (!b) continue;
          active += b.active;
          total += b.total;
          connectFailures += b.connectFailures;
          bytesIn += b.bytesIn;
          bytesOut += b.bytesOut;
          openBytesIn += b.openBytesIn;
          openBytesOut += b.openBytesOut;
          factors += b.weightFactor ?? 1;
          reporting++;
          for (const [source, status] of Object.entries(b.status)) {
            if (owned.has(source)) continue; // the primary sets these itself (health checks)
            const seen = statuses.get(source);
            if (seen === undefined || (!RESTRICTED_STATUSES.has(seen) && RESTRICTED_STATUSES.has(status)))
              statuses.set(source, status);
          }
        }
        backend.active = active;
        backend.total = total;
        backend.connectFailures = connectFailures;
        backend.bytesIn = bytesIn;
        backend.bytesOut = bytesOut;
        backend.openBytesIn = openBytesIn;
        backend.openBytesOut = openBytesOut;
        setFactor(service, backend, reporting === 0 ? 1 : factors / reporting);
        for (const [source, status] of statuses) service.setBackendStatus(backend, source, status);
        for (const source of Object.keys(backend.status))
          if (!statuses.has(source) && !owned.has(source)) service.clearBackendStatus(backend, source);
      }
    }
  }
}

/** A factor out of (0, 1] (a bad report) is ignored rather than thrown at the stats round. */
function setFactor(service: Service, backend: Backend, factor: number): void {
  const f = factor > 0 && factor < 1 ? factor : 1;
  // Ramps move in steps of ≥ 25 ms; smaller differences are noise between two workers' steps.
  if (Math.abs(service.backends.weightFactor(backend, WORKERS_FACTOR) - f) < 1e-6) return;
  service.backends.setWeightFactor(backend, WORKERS_FACTOR, f);
}

function zeroServiceCounters(): ServiceCounters {
  return { ...zeroCounters(), dropped: 0 };
}
