import { definePlugin, STAGE } from '../../plugin-sdk/index.js';
import { BreakerController, NAME } from './controller.js';
import { type CircuitBreakerOptions, checkOptions, schema } from './options.js';

export type { BreakerCounters, BreakerSnapshot, BreakerState, CircuitBreakerApi } from './api.js';

/**
 * A circuit breaker per backend (Hystrix closed / open / half-open) with Envoy's outlier
 * ejection rules: open on consecutive connect failures or a failure ratio, stay open for
 * base x ejections (capped, jittered, decaying while healthy), then let a bounded number of
 * trial sessions decide. Never ejects more than `max_ejection_percent` of the pool.
 */
export default definePlugin<CircuitBreakerOptions>({
  name: NAME,
  description: 'Per-backend circuit breaker with outlier ejection (closed / open / half-open).',
  schema,
  apply(service, options) {
    checkOptions(options);
    const breakers = new BreakerController(service, options);
    service.provide(NAME, breakers.api());
    const { hooks } = service;
    hooks.backendAdded.tap(NAME, (backend) => breakers.add(backend));
    hooks.backendRemoved.tap(NAME, (backend) => breakers.remove(backend));
    hooks.backendStatus.tap(NAME, (backend, source, status) =>
      breakers.onBackendStatus(backend, source, status),
    );
    // Another worker of a cluster opened its breaker: eject here too (cluster-wide ejection).
    hooks.backendPeerStatus.tap(NAME, (backend, source, status) =>
      breakers.onPeerStatus(backend, source, status),
    );
    hooks.candidates.tap(NAME, (backends) => breakers.filter(backends));
    // STAGE.OBSERVE: a pool or TLS plugin bails out of `connect`, and trials must be counted first.
    hooks.connect.tap({ name: NAME, stage: STAGE.OBSERVE }, (session, backend) => {
      breakers.onConnect(session, backend);
      return undefined;
    });
    hooks.established.tap(NAME, (session) => breakers.onEstablished(session));
    hooks.connectFailed.tap(NAME, (session, backend, error) =>
      breakers.onConnectFailed(session, backend, error),
    );
    hooks.closed.tap(NAME, (session) => breakers.onClosed(session));
    hooks.stop.tap(NAME, () => breakers.stop());
  },
});
