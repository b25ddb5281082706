import type { ReconcileResult } from './backend-origin.js';
import type { BackendSpec } from './types.js';

/** How a discovery source relates to the service's other backends. */
export interface DiscoverySourceOptions {
  /**
   * The source holds the service's whole list (etcd-registry): the config's `backends` are not
   * added at start (the source may use them to seed its store), a config reload leaves the
   * backends alone, the admin API's state file does not record them, and admin changes go to
   * the source's store (through a `REGISTRY_WRITER`) or are refused. At most one per service.
   * Default false: the source adds its backends next to the config's and the API's (dns-discovery).
   */
  exclusive?: boolean;
}

/** A source's view of where it reads from, as `/readyz` and metrics show it. */
export interface DiscoveryStatus {
  /** The source's name, which is also the `origin` of its backends. */
  readonly name: string;
  readonly exclusive: boolean;
  /**
   * False while the source cannot read its store (DNS lookups fail, etcd unreachable): the
   * service keeps serving the last list it handed (stale-if-error).
   */
  readonly ok: boolean;
  /** Why it is not ok (or null). */
  readonly detail: string | null;
  /** When `ok` last changed (ms since the epoch). */
  readonly since: number;
  /** When the source last handed a list (ms since the epoch), or null before the first. */
  readonly lastUpdate: number | null;
  /** Backends the source listed last time. */
  readonly listed: number;
}

/**
 * What a discovery source plugin gets from `service.addDiscoverySource(name)`: it hands the
 * whole list of backend specs whenever it changes, and says whether its store is reachable.
 * The core reconciles the registry (BackendRegistry.reconcile). With several workers, call it
 * only where `service.runtime.role` is not `worker`: the primary's registry reaches the
 * workers in its snapshots (docs/multi-process.md).
 */
export interface DiscoverySource {
  readonly name: string;
  readonly exclusive: boolean;
  /**
   * The source's whole current list. Before the service starts it is kept and applied at start
   * (after the config's backends); afterwards it is applied at once. Spec fields besides the
   * config's: `draining` (boolean) and `drain_timeout` (ms; how long sessions may continue once
   * the backend is drained or removed; default the service's `drain_timeout`).
   * Returns what changed (empty lists before start).
   */
  update(specs: readonly BackendSpec[]): ReconcileResult;
  /** Reports whether the store is reachable; `/readyz` shows a service degraded while it is not. */
  setStatus(ok: boolean, detail?: string): void;
  readonly status: DiscoveryStatus;
}
