import { type Backend, definePlugin, hasRestrictedStatus } from '../../plugin-sdk/index.js';
import { BackendPool, type PoolSettings, type PoolStats } from './backend-pool.js';
import { poolConnectTimeout } from './backoff.js';
import { checkPoolOptions, type PoolOptions, poolSchema } from './options.js';

export type { PoolStats } from './backend-pool.js';

const NAME = 'connection-pool';

/** What the plugin provides: `service.use<ConnectionPoolApi>('connection-pool')`. */
export interface ConnectionPoolApi {
  /** One entry per pooled backend (plain TCP backends only). */
  stats(): PoolStats[];
}

/**
 * Warm pre-connected sockets per backend (Envoy preconnect): a new session takes one in the
 * `connect` hook and skips the connect round trip. Each socket serves one session only.
 * TLS backends (`tls: true`) are left to the tls-upstream plugin. See README.md.
 */
export default definePlugin<PoolOptions>({
  name: NAME,
  description: 'Warm pre-connected upstream sockets per backend (each used once).',
  schema: poolSchema,
  apply(service, options) {
    checkPoolOptions(options);
    const settings: PoolSettings = {
      ...options,
      connectTimeout: poolConnectTimeout(
        options.connect_timeout ?? service.config.connect_timeout,
        options.backoff_max,
      ),
      running: () => service.state === 'running',
      log: service.log.child({ plugin: NAME }),
    };
    const pools = new Map<Backend, BackendPool>();
    // No prefill while any status restricts the backend (health down, breaker open or half-open):
    // warm sockets would only wait for sessions it does not take, or take none.
    const shouldFill = (b: Backend) =>
      b.state === 'up' && service.state === 'running' && !hasRestrictedStatus(b);
    const sync = (b: Backend) => pools.get(b)?.setOpen(shouldFill(b));

    service.hooks.backendAdded.tap(NAME, (backend) => {
      if (backend.spec.tls === true) return;
      let pool = pools.get(backend);
      if (pool === undefined) {
        pool = new BackendPool(backend, settings);
        pools.set(backend, pool);
      }
      pool.setOpen(shouldFill(backend));
    });
    service.hooks.backendRemoved.tap(NAME, (backend) => {
      pools.get(backend)?.close();
      pools.delete(backend);
    });
    service.hooks.backendChanged.tap(NAME, sync);
    service.hooks.backendStatus.tap(NAME, sync);

    service.hooks.connect.tap(NAME, (_session, backend) => {
      const pool = pools.get(backend);
      if (pool === undefined) return undefined;
      const socket = pool.take();
      pool.queueFill();
      return socket === null ? undefined : { socket, readyEvent: null };
    });

    service.hooks.stop.tapPromise(NAME, async () => {
      const all = [...pools.values()];
      pools.clear();
      for (const pool of all) pool.close();
      await Promise.all(all.map((p) => p.closed()));
    });

    service.provide<ConnectionPoolApi>(NAME, {
      stats: () => [...pools.values()].map((p) => p.stats()),
    });
  },
});
