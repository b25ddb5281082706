import type { Registry } from 'prom-client';
import type { Runtime } from '../../plugin-sdk/index.js';
import { registerScraped } from './scraped-metric.js';

/** The part of `runtime.use('admin-api')` read here; optional, every call is guarded. */
interface AdminApiView {
  refused?: () => { host: number; crossSite: number };
}

/**
 * Plugins' own listeners in this process (the admin API, demo backends): their connection
 * caps, open connections and connections refused at the cap (`runtime.capacity.listeners`),
 * and the admin API's refusals of browser requests (Host not allowed, cross-site changes).
 */
export function registerListenerMetrics(registry: Registry, runtime: Runtime): void {
  const shares = () => runtime.capacity.listeners.shares;
  registerScraped(registry, {
    name: 'switchyard_listener_connections',
    help: "Connections open on a plugin's own listener (admin API, demo backends).",
    type: 'gauge',
    collect: (emit) => {
      for (const s of shares()) emit({ listener: s.name }, s.active);
    },
  });
  registerScraped(registry, {
    name: 'switchyard_listener_max_connections',
    help: "A plugin listener's max_connections (they share 128 descriptors).",
    type: 'gauge',
    collect: (emit) => {
      for (const s of shares()) emit({ listener: s.name }, s.maxConnections);
    },
  });
  registerScraped(registry, {
    name: 'switchyard_listener_refused_total',
    help: 'Connections a plugin listener closed at accept because max_connections were open.',
    type: 'counter',
    collect: (emit) => {
      for (const s of shares()) emit({ listener: s.name }, s.refused);
    },
  });
  registerScraped(registry, {
    name: 'switchyard_admin_refused_requests_total',
    help: 'Admin API requests refused by reason: host (Host header not allowed: DNS rebinding?) or cross_site (a change a browser sent for another site).',
    type: 'counter',
    collect: (emit) => {
      const counts = runtime.use<AdminApiView>('admin-api')?.refused?.();
      if (counts === undefined) return;
      emit({ reason: 'host' }, counts.host);
      emit({ reason: 'cross_site' }, counts.crossSite);
    },
  });
}
