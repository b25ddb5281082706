import type { Backend, BackendState, Runtime, Service } from '../../plugin-sdk/index.js';
import { type Condition, conditionOf, limitsOf } from './condition.js';
import type { TimelineEntry } from './timeline.js';
import { type ServiceNode, serviceNode } from './topology.js';

/** One backend row of the page. Bytes include the open sessions, so long sessions show. */
export interface BackendRow {
  address: string;
  weight: number;
  /** The weight balancers use now (below `weight` while slow start ramps). */
  effectiveWeight: number;
  state: BackendState;
  /** Whether it takes new sessions and why: one word for the page (condition.ts). */
  condition: Condition;
  /** Who manages it (`config`, `api`, a discovery source), when the core reports it. */
  origin?: string;
  /** Plugin statuses as set through `service.setBackendStatus`, e.g. `{ "health-check": "down" }`. */
  status: Record<string, string>;
  active: number;
  total: number;
  connectFailures: number;
  bytesIn: number;
  bytesOut: number;
  /** `Date.now()` of the last state, weight or status change seen by the dashboard; null if none since start. */
  changedAt: number | null;
}

export interface ServiceRow {
  name: string;
  listen: string[];
  state: Service['state'];
  sessions: number;
  counters: Service['counters'];
  /** Sessions waiting for a slot (backend-limits plugin), or null without it. */
  queue: number | null;
  backends: BackendRow[];
  /** Balancer, PROXY protocol, TLS and sni-router routes, for the topology. */
  topology: ServiceNode;
}

/** What `GET /dashboard/state` answers. */
export interface DashboardState {
  /** Server time, so the page computes rates and ages without trusting the browser clock. */
  now: number;
  /** How often the page polls, in ms. */
  refresh: number;
  process: { pid: number; node: string; uptime: number };
  /** The force-disconnect switch, or null when that plugin is not enabled. */
  forceDisconnect: ForceDisconnectView | null;
  services: ServiceRow[];
  /**
   * What the admin API asks of callers: `token` whether a token is configured at all (none:
   * every call is accepted, the page enables its buttons); `readsOpen` whether GET calls pass
   * without it. Null when admin-api does not say.
   */
  admin: { token: boolean; readsOpen: boolean } | null;
  /** Cluster: live workers; null with one process. */
  workers: number | null;
  /** Status and registry transitions, newest first (bounded: `timeline` option). */
  timeline: TimelineEntry[];
  /** The history the page can ask for (`GET /dashboard/history`). */
  history: { interval: number; capacity: number; connectTimes: boolean };
}

/** What `runtime.use('force-disconnect').state()` answers (the same as `GET /force_disconnect`). */
export interface ForceDisconnectView {
  enabled: boolean;
  /** Sessions closed by the last switch-on. */
  closed: number;
  /** ISO time of the last change. */
  since: string;
}

/** The part of `service.use('backend-limits')` read here; optional, every call is guarded. */
interface BackendLimitsView {
  queueLength?: () => number;
}

/**
 * Remembers when each backend last changed (state, weight, plugin status), for the page's
 * "since" column. Taps registry hooks only: nothing runs per session.
 */
export function trackChanges(service: Service): WeakMap<Backend, number> {
  const changedAt = new WeakMap<Backend, number>();
  const mark = (backend: Backend) => {
    changedAt.set(backend, Date.now());
  };
  service.hooks.backendAdded.tap('dashboard', mark);
  service.hooks.backendChanged.tap('dashboard', mark);
  service.hooks.backendRemoved.tap('dashboard', mark);
  service.hooks.backendStatus.tap('dashboard', mark);
  return changedAt;
}

function queueLength(service: Service): number | null {
  try {
    const n = service.use<BackendLimitsView>('backend-limits')?.queueLength?.();
    return typeof n === 'number' && Number.isFinite(n) ? n : null;
  } catch {
    return null; // another plugin's bug must not take the page down
  }
}

function serviceRow(service: Service, changedAt: WeakMap<Backend, number> | undefined): ServiceRow {
  const rows = new Map<Backend, BackendRow>();
  const limits = limitsOf(service);
  const row = (b: Backend): BackendRow => ({
    address: b.address,
    weight: b.weight,
    effectiveWeight: Math.round(b.effectiveWeight * 100) / 100,
    state: b.state,
    condition: conditionOf(b, limits.get(b.address)),
    ...originOf(b),
    status: { ...b.status },
    active: b.active,
    total: b.total,
    connectFailures: b.connectFailures,
    // In a cluster primary the workers' open sessions (0 elsewhere: walked below instead).
    bytesIn: b.bytesIn + b.openBytesIn,
    bytesOut: b.bytesOut + b.openBytesOut,
    changedAt: changedAt?.get(b) ?? null,
  });
  for (const b of service.backends.list()) rows.set(b, row(b));
  // Open sessions: their bytes so far, and removed backends that are still draining.
  for (const [b, open] of service.openBytes()) {
    let r = rows.get(b);
    if (r === undefined) {
      r = row(b);
      rows.set(b, r);
    }
    r.bytesIn += open.in;
    r.bytesOut += open.out;
  }
  let listen: string[];
  try {
    listen = service.addresses();
  } catch {
    listen = service.config.listen;
  }
  return {
    name: service.name,
    listen,
    state: service.state,
    sessions: service.sessionCount,
    counters: service.counters,
    queue: queueLength(service),
    backends: [...rows.values()],
    topology: serviceNode(service),
  };
}

/** `backend.origin` once the core keeps it (discovery); absent before. */
function originOf(b: Backend): { origin?: string } {
  const origin = (b as { origin?: unknown }).origin;
  return typeof origin === 'string' ? { origin } : {};
}

/** What the page needs besides the registry: given by index.ts. */
export interface StateExtras {
  admin: DashboardState['admin'];
  workers: number | null;
  timeline: TimelineEntry[];
  history: DashboardState['history'];
}

export function dashboardState(
  runtime: Runtime,
  refresh: number,
  changes: ReadonlyMap<Service, WeakMap<Backend, number>>,
  extras: StateExtras,
): DashboardState {
  return {
    now: Date.now(),
    refresh,
    process: { pid: process.pid, node: process.version, uptime: Math.round(process.uptime()) },
    forceDisconnect:
      runtime.use<{ state?: () => ForceDisconnectView }>('force-disconnect')?.state?.() ?? null,
    services: [...runtime.services.values()].map((s) => serviceRow(s, changes.get(s))),
    ...extras,
  };
}
