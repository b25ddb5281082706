import type { Registry } from 'prom-client';
import { registerScraped } from './scraped-metric.js';
import type { ServiceSnapshot } from './snapshot.js';

export const CONNECT_HISTOGRAM = 'switchyard_backend_connect_seconds';

/**
 * `switchyard_backend_connect_seconds`, a histogram per (service, backend). Not a prom-client
 * `Histogram`: its `observe()` validates and hashes the labels on every call (~1 µs and several
 * allocations per session); the plugin's own per-backend bucket counts cost a few ns per
 * session and are turned into series only when Prometheus scrapes.
 */
export function registerConnectHistogram(
  registry: Registry,
  bounds: readonly number[],
  snapshot: () => ServiceSnapshot[],
): void {
  const name = CONNECT_HISTOGRAM;
  const les: Array<number | string> = [...bounds, '+Inf'];
  registerScraped(registry, {
    name,
    help: 'Time from accepting the client to the backend connection being ready (includes failed attempts on other backends; 1 ms resolution).',
    type: 'histogram',
    collect(emit) {
      for (const { service, backends, stats } of snapshot()) {
        for (const { backend } of backends) {
          const h = stats.backends.get(backend)?.connectTimes;
          let cumulative = 0;
          for (let i = 0; i < les.length; i++) {
            cumulative += h?.counts[i] ?? 0;
            emit(
              { service: service.name, backend: backend.address, le: les[i]! },
              cumulative,
              `${name}_bucket`,
            );
          }
          const base = { service: service.name, backend: backend.address };
          emit(base, h?.sum ?? 0, `${name}_sum`);
          emit(base, h?.count ?? 0, `${name}_count`);
        }
      }
    },
  });
}
