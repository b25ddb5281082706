import type { Registry } from 'prom-client';
import type { Backend, BackendState, Service } from '../../plugin-sdk/index.js';
import type { BackendView } from './backend-view.js';
import { type Labels, registerScraped } from './scraped-metric.js';
import type { ServiceSnapshot } from './snapshot.js';

type Snapshot = () => ServiceSnapshot[];
type Kind = 'counter' | 'gauge';

const BACKEND_STATES: readonly BackendState[] = ['up', 'draining', 'removed'];

/** The part of `service.use('backend-limits')` read here; optional, every call is guarded. */
interface BackendLimitsView {
  queueLength?: () => number;
}

function scraped(
  registry: Registry,
  kind: Kind,
  name: string,
  help: string,
  fill: (emit: (labels: Labels, value: number) => void) => void,
): void {
  registerScraped(registry, { name, help, type: kind, collect: fill });
}

/** A metric with one series per (service, backend). */
function perBackend(
  registry: Registry,
  snapshot: Snapshot,
  kind: Kind,
  name: string,
  help: string,
  value: (view: BackendView) => number,
): void {
  scraped(registry, kind, name, help, (emit) => {
    for (const { service, backends } of snapshot())
      for (const view of backends) emit(backendLabels(service, view.backend), value(view));
  });
}

/** A metric with one series per service. */
function perService(
  registry: Registry,
  snapshot: Snapshot,
  kind: Kind,
  name: string,
  help: string,
  value: (s: ServiceSnapshot) => number | undefined,
): void {
  scraped(registry, kind, name, help, (emit) => {
    for (const s of snapshot()) {
      const v = value(s);
      if (v !== undefined) emit({ service: s.service.name }, v);
    }
  });
}

function backendLabels(service: Service, backend: Backend): Labels {
  return { service: service.name, backend: backend.address };
}

function queueLength(service: Service): number | undefined {
  const limits = service.use<BackendLimitsView>('backend-limits');
  const n = limits?.queueLength?.();
  return typeof n === 'number' && Number.isFinite(n) ? n : undefined;
}

/** Registers every `switchyard_*` metric except the connect histogram. README.md documents each. */
export function registerServiceMetrics(registry: Registry, snapshot: Snapshot): void {
  const service = (
    kind: Kind,
    name: string,
    help: string,
    value: (s: ServiceSnapshot) => number | undefined,
  ) => perService(registry, snapshot, kind, name, help, value);
  service(
    'gauge',
    'switchyard_service_sessions_active',
    'Open client sessions.',
    (s) => s.service.sessionCount,
  );
  service(
    'counter',
    'switchyard_service_accepted_total',
    'Client connections accepted.',
    (s) => s.counters.accepted,
  );
  service(
    'counter',
    'switchyard_service_rejected_total',
    'Sessions refused by a plugin (accept or unavailable hook).',
    (s) => s.counters.rejected,
  );
  service(
    'counter',
    'switchyard_service_no_backend_total',
    'Times no backend could be selected for a session.',
    (s) => s.counters.noBackend,
  );
  service(
    'counter',
    'switchyard_service_connect_failures_total',
    'Failed connect attempts to backends.',
    (s) => s.counters.connectFailures,
  );
  service(
    'counter',
    'switchyard_service_retries_total',
    'Connect attempts retried after a failure.',
    (s) => s.counters.retries,
  );
  service(
    'counter',
    'switchyard_service_established_total',
    'Sessions connected to a backend.',
    (s) => s.counters.established,
  );
  service(
    'counter',
    'switchyard_service_closed_total',
    'Sessions ended, for any reason.',
    (s) => s.counters.closed,
  );
  service(
    'counter',
    'switchyard_service_overloaded_total',
    'Connections refused at accept because the process session budget (open files limit) was reached.',
    (s) => s.counters.overloaded,
  );
  service(
    'counter',
    'switchyard_service_peek_timeouts_total',
    'Sessions closed because a peek tap (PROXY header, ClientHello) waited for client bytes that did not come in time.',
    (s) => s.counters.peekTimeouts,
  );
  service(
    'counter',
    'switchyard_service_routed_total',
    "Sessions accepted here that a route plugin (sni-router) sent to another service's pool.",
    (s) => s.counters.routed,
  );
  service(
    'counter',
    'switchyard_service_routed_in_total',
    "Sessions other services' route plugins sent to this service's pool (a pool's sessions; accepted elsewhere).",
    (s) => s.counters.routedIn,
  );
  service(
    'counter',
    'switchyard_service_dropped_total',
    'Connections closed by the listener at max_connections, before they became sessions.',
    (s) => s.counters.dropped,
  );
  service(
    'gauge',
    'switchyard_service_queue_length',
    'Sessions waiting for a backend slot (backend-limits plugin; absent without it).',
    (s) => queueLength(s.service),
  );

  scraped(
    registry,
    'counter',
    'switchyard_service_rejections_total',
    'Rejected sessions by the reason the rejecting plugin gave (at most 32 reasons, then "other").',
    (emit) => {
      for (const { service, stats } of snapshot())
        for (const [reason, n] of stats.rejections) emit({ service: service.name, reason }, n);
    },
  );
  scraped(
    registry,
    'counter',
    'switchyard_sessions_closed_total',
    'Sessions ended, by close reason; backend is "" for sessions that never reached one (per-backend series appear with their first session).',
    (emit) => {
      for (const { service, backends, stats } of snapshot()) {
        for (const [reason, n] of Object.entries(stats.closedUnconnected))
          emit({ service: service.name, backend: '', reason }, n);
        for (const { backend } of backends) {
          const closed = stats.backends.get(backend)?.closed;
          if (closed === undefined) continue;
          // Only reasons that happened: 13 zero series per backend would be a third of a scrape.
          for (const [reason, n] of Object.entries(closed))
            if (n > 0) emit({ service: service.name, backend: backend.address, reason }, n);
        }
      }
    },
  );

  const backend = (kind: Kind, name: string, help: string, value: (v: BackendView) => number) =>
    perBackend(registry, snapshot, kind, name, help, value);
  backend(
    'gauge',
    'switchyard_backend_sessions_active',
    'Sessions assigned to the backend (connecting or piping).',
    (v) => v.backend.active,
  );
  backend(
    'counter',
    'switchyard_backend_sessions_total',
    'Sessions that connected to the backend.',
    (v) => v.backend.total,
  );
  backend(
    'counter',
    'switchyard_backend_bytes_in_total',
    'Bytes from clients to the backend, open sessions included.',
    (v) => v.bytesIn,
  );
  backend(
    'counter',
    'switchyard_backend_bytes_out_total',
    'Bytes from the backend to clients, open sessions included.',
    (v) => v.bytesOut,
  );
  backend(
    'counter',
    'switchyard_backend_connect_failures_total',
    'Failed connect attempts to the backend (refused, timeout, reset, TLS).',
    (v) => v.backend.connectFailures,
  );
  backend('gauge', 'switchyard_backend_weight', 'Configured weight (1..256).', (v) => v.backend.weight);

  scraped(
    registry,
    'gauge',
    'switchyard_backend_state',
    'Registry state of the backend: 1 for the current state (up, draining, removed), 0 for the others.',
    (emit) => {
      for (const { service, backends } of snapshot())
        for (const { backend } of backends)
          for (const state of BACKEND_STATES)
            emit({ ...backendLabels(service, backend), state }, backend.state === state ? 1 : 0);
    },
  );
  scraped(
    registry,
    'gauge',
    'switchyard_backend_status',
    'Status a plugin set on the backend (source = plugin, e.g. health-check up/down, circuit-breaker open/closed); 1 per current status.',
    (emit) => {
      for (const { service, backends } of snapshot())
        for (const { backend } of backends)
          for (const [source, status] of Object.entries(backend.status))
            emit({ ...backendLabels(service, backend), source, status }, 1);
    },
  );
}
