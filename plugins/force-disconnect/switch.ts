import {
  CLUSTER,
  type ClusterBridge,
  type Rejection,
  type Runtime,
  SHARED_SWITCHES,
  type SharedSwitches,
} from '../../plugin-sdk/index.js';

/** What `POST` and `GET /force_disconnect` answer. */
export interface ForceDisconnectState {
  enabled: boolean;
  /** Sessions closed by the last enable (0 before the first). */
  closed: number;
  /** When `enabled` last changed (ISO time); the plugin's start when it never did. */
  since: string;
}

/** Shared through `runtime.provide('force-disconnect', ...)` for callers other than HTTP. */
export interface ForceDisconnect {
  /** The one place the state changes; a multi-process mode forwards this call to each worker. */
  set(enabled: boolean): ForceDisconnectState;
  /**
   * Like `set`, in every process: with `workers` > 1 the primary forwards the change to each
   * worker (and to workers forked later) and `closed` is the sum over workers. With one
   * process it is `set`.
   */
  setEverywhere(enabled: boolean): Promise<ForceDisconnectState>;
  /**
   * Like `setEverywhere`, on every instance: when a plugin shares switches between instances
   * (`SHARED_SWITCHES`, e.g. etcd-registry), the change is written there and every instance
   * applies it (`closed` counts this instance's sessions); otherwise `setEverywhere`.
   */
  setFleetWide(enabled: boolean): Promise<ForceDisconnectState>;
  state(): ForceDisconnectState;
}

/** The cluster topic; the payload is `{ enabled }`, a worker answers how many it closed. */
const TOPIC = 'force-disconnect';

/** One frozen object for every refused connection: refusing allocates nothing. */
const REJECTION: Rejection = Object.freeze({ reason: 'force-disconnect' });

/**
 * The switch. While on, every service's `accept` refuses new connections (one closure
 * variable read per connection). Turning it on closes every session of every service, client
 * and upstream sockets together.
 */
export function createSwitch(runtime: Runtime): ForceDisconnect {
  let enabled = false;
  let closed = 0;
  let since = new Date().toISOString();
  const log = runtime.log.child({ plugin: 'force-disconnect' });

  for (const service of runtime.services.values())
    service.hooks.accept.tap('force-disconnect', () => (enabled ? REJECTION : undefined));

  const state = (): ForceDisconnectState => ({ enabled, closed, since });
  /** The last change a shared switch made here (its promise settles once every worker has it). */
  let applying: Promise<unknown> = Promise.resolve();
  const fd: ForceDisconnect = {
    state,
    async setFleetWide(next) {
      const shared = runtime.use<SharedSwitches>(SHARED_SWITCHES);
      if (shared === undefined) return fd.setEverywhere(next);
      await shared.set(TOPIC, next); // resolves once this instance's watch applied it
      await applying;
      return state();
    },
    async setEverywhere(next) {
      const local = fd.set(next);
      const cluster = runtime.use<ClusterBridge>(CLUSTER);
      if (cluster?.role !== 'primary') return local;
      const counts = await cluster.request<number>(TOPIC, { enabled: next });
      // Only the change that closed sessions sets `closed`, as with one process.
      if (next) closed = counts.reduce((sum, n) => sum + (typeof n === 'number' ? n : 0), 0);
      if (next) log.warn({ closed, workers: counts.length }, 'force-disconnect on in every worker');
      return state();
    },
    set(next) {
      if (next !== enabled) since = new Date().toISOString();
      enabled = next;
      if (next) {
        // Refuse first, then close: nothing accepted in between survives.
        closed = 0;
        // Each session once, by the service that accepted it (a routed one is in its pool's table too).
        for (const service of runtime.services.values())
          closed += service.closeSessions('killed', (s) => s.service === service);
        log.warn({ closed }, 'force-disconnect on: all sessions closed, new connections refused');
      } else {
        log.warn('force-disconnect off: accepting connections again');
      }
      return state();
    },
  };
  runtime
    .use<ClusterBridge>(CLUSTER)
    ?.handle(TOPIC, (payload) => fd.set((payload as { enabled: boolean }).enabled === true).closed);
  // Shared between instances (etcd-registry): follow the stored switch, whoever set it — also
  // at start, so an instance started while it is on refuses connections from the first one.
  runtime.hooks.start.tap('force-disconnect', () => {
    runtime.use<SharedSwitches>(SHARED_SWITCHES)?.watch(TOPIC, (next) => {
      if (next === enabled) return;
      applying = fd.setEverywhere(next).catch((err: unknown) => {
        log.error({ err }, 'force-disconnect: cannot apply the shared switch');
      });
    });
  });
  return fd;
}
