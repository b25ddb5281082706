import type { Registry } from 'prom-client';
import type { DiscoveryStatus, Runtime } from '../../plugin-sdk/index.js';
import { registerScraped } from './scraped-metric.js';

/**
 * Discovery sources (dns-discovery, etcd-registry), per service and source: whether each reads
 * its store now, how many backends it listed last, and when. Read from `service.discoverySources`
 * at scrape time; in a cluster, the primary is where sources run and where this is served.
 */
export function registerDiscoveryMetrics(registry: Registry, runtime: Runtime): void {
  type Emit = (labels: { service: string; source: string }, value: number) => void;
  const each = (value: (s: DiscoveryStatus) => number | undefined) => (emit: Emit) => {
    for (const service of runtime.services.values())
      for (const s of service.discoverySources) {
        const v = value(s);
        if (v !== undefined) emit({ service: service.name, source: s.name }, v);
      }
  };
  registerScraped(registry, {
    name: 'switchyard_discovery_source_up',
    help: 'Whether the discovery source reads its store (1) or not (0: etcd unreachable, DNS lookups failing; the last backends are kept).',
    type: 'gauge',
    collect: each((s) => (s.ok ? 1 : 0)),
  });
  registerScraped(registry, {
    name: 'switchyard_discovery_source_backends',
    help: 'Backends in the list the source handed last.',
    type: 'gauge',
    collect: each((s) => s.listed),
  });
  registerScraped(registry, {
    name: 'switchyard_discovery_source_last_update_seconds',
    help: 'Unix time the source last handed a list (absent before the first).',
    type: 'gauge',
    collect: each((s) => (s.lastUpdate === null ? undefined : s.lastUpdate / 1000)),
  });
}
