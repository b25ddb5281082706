import {
  ADMIN_ROUTES,
  CidrList,
  definePlugin,
  LogThrottle,
  parseDuration,
  type Rejection,
  type Runtime,
  type Service,
} from '../../plugin-sdk/index.js';
import { checkOptions, parseRate, type SourceLimitsOptions, schema } from './options.js';
import { sourceLimitsRoutes } from './routes.js';
import { type SourceEntry, SourceTable } from './source-table.js';

export type { SourceLimitsOptions } from './options.js';

/** The name the plugin provides its API under. */
export const SOURCE_LIMITS = 'source-limits';

/** Counters since start. */
export interface SourceLimitsStats {
  /** Refused because the source held `max_connections` sessions (rejection reason `source-connections`). */
  refusedConnections: number;
  /** Refused because the source's bucket was empty (rejection reason `source-rate`). */
  refusedRate: number;
  /** Let through without tracking: the table was full of sources holding sessions. */
  untracked: number;
  /** Sources forgotten (idle) by the sweep or to make room. */
  evicted: number;
}

/** What `service.use<SourceLimitsApi>('source-limits')` returns. */
export interface SourceLimitsApi {
  readonly stats: Readonly<SourceLimitsStats>;
  /** Sources tracked now. */
  readonly sources: number;
  /** The busiest sources (most sessions held, then emptiest bucket). */
  top(limit: number): Array<{ source: string; active: number; tokens: number }>;
}

const CONNECTIONS: Rejection = Object.freeze({ reason: 'source-connections', reset: true });
const RATE: Rejection = Object.freeze({ reason: 'source-rate', reset: true });
/** Sweep of idle sources; the table is also trimmed when full, so this only returns memory early. */
const SWEEP_INTERVAL = 10_000;

/** The admin routes serve every service of a runtime: contributed once per runtime. */
const routed = new WeakSet<Runtime>();

/**
 * Per-source limits (HAProxy `stick-table` + `sc_conn_cur` / `sc_conn_rate`, NGINX
 * `limit_conn`): concurrent sessions and new sessions per source, checked in `admit` — after
 * the peek stage, so behind a load balancer that sends a PROXY header the source is the real
 * client. Refusals are resets, counted per reason (metrics: `switchyard_service_rejections_total`).
 */
export default definePlugin<SourceLimitsOptions>({
  name: SOURCE_LIMITS,
  description: 'Per-source (or per-network) limits on concurrent and new sessions.',
  schema,
  check: checkOptions,
  apply(service, options) {
    const log = service.log.child({ plugin: SOURCE_LIMITS });
    const maxConnections = options.max_connections;
    const rate = options.rate === undefined ? null : parseRate(options.rate);
    if (maxConnections === 0 && rate === null)
      throw new Error('set max_connections, rate, or both (neither is set, so nothing would be limited)');
    const allow = CidrList.parse(options.allow ?? [], 'allow');
    const table = new SourceTable({
      prefixV4: options.prefix_v4,
      prefixV6: options.prefix_v6,
      maxSources: options.max_sources,
      burst: options.burst ?? rate?.count ?? 1,
      perMs: rate?.perMs ?? 0,
    });
    const stats: SourceLimitsStats = { refusedConnections: 0, refusedRate: 0, untracked: 0, evicted: 0 };
    const throttle = new LogThrottle(log, parseDuration(options.log_interval) ?? 10_000);
    /** Session id → its source's entry, while the session holds a slot. */
    const holding = new Map<number, SourceEntry>();

    service.hooks.admit.tap(SOURCE_LIMITS, (session) => {
      const address = session.remoteAddress;
      if (allow.size > 0 && allow.has(address)) return undefined;
      const key = table.keyOf(address);
      if (key === null) return undefined; // not an IP client (nothing to count it by)
      const now = Date.now();
      const entry = table.get(key) ?? table.create(key, now);
      if (entry === null) {
        stats.untracked++;
        throttle.warn(
          'full',
          { sources: table.size, max_sources: options.max_sources },
          'source table full of sources holding sessions; new sources pass unlimited',
        );
        return undefined;
      }
      if (maxConnections > 0 && entry.active >= maxConnections) {
        stats.refusedConnections++;
        throttle.warn(
          'connections',
          { source: key, held: entry.active },
          'source over max_connections; refused',
        );
        return CONNECTIONS;
      }
      if (rate !== null && !table.take(entry, now)) {
        stats.refusedRate++;
        throttle.warn('rate', { source: key, rate: options.rate }, 'source over its rate; refused');
        return RATE;
      }
      entry.active++;
      holding.set(session.id, entry);
      return undefined;
    });
    service.hooks.closed.tap(SOURCE_LIMITS, (session) => {
      const entry = holding.get(session.id);
      if (entry === undefined) return;
      holding.delete(session.id);
      entry.active--;
    });

    let sweep: NodeJS.Timeout | null = null;
    service.hooks.start.tap(SOURCE_LIMITS, () => {
      sweep = setInterval(() => table.sweep(Date.now()), SWEEP_INTERVAL);
      sweep.unref();
    });
    service.hooks.stop.tap(SOURCE_LIMITS, () => {
      if (sweep !== null) clearInterval(sweep);
      sweep = null;
    });

    const api: SourceLimitsApi = {
      get stats() {
        return { ...stats, evicted: table.evicted };
      },
      get sources() {
        return table.size;
      },
      top: (limit) => table.top(limit, Date.now()),
    };
    service.provide<SourceLimitsApi>(SOURCE_LIMITS, api);
    contributeRoutes(service);
  },
});

function contributeRoutes(service: Service): void {
  const runtime = service.runtime;
  if (routed.has(runtime)) return;
  routed.add(runtime);
  for (const route of sourceLimitsRoutes(runtime)) runtime.contribute(ADMIN_ROUTES, route);
}
