import type { Logger } from 'pino';
import type { AsyncParallelHook, AsyncSeriesHook } from 'tapable';
import type { ReconcileResult } from './backend-origin.js';
import type { RuntimeRole } from './cluster/bridge.js';
import type { ProcessSettings, ServiceSettings } from './config/settings.js';
import type { ServiceCounters } from './counters.js';
import type { DiscoverySource, DiscoverySourceOptions, DiscoveryStatus } from './discovery.js';
import type { ServiceHooks } from './hooks.js';
import type { ListenerBudget } from './listener-budget.js';
import type { Backend, BackendSpec, CloseReason, ServiceRef, Session } from './types.js';

/**
 * What plugins see of the core's objects: interfaces the core's classes implement (core/service.ts,
 * core/runtime.ts, core/backend-registry.ts), without the parts only the core and its cluster
 * code use. Exported by the plugin SDK.
 */

export interface RemoveOptions {
  /**
   * How long existing sessions may continue before they are closed (ms). Undefined uses the
   * service's `drain_timeout`; 0 closes them at once.
   */
  drainTimeout?: number;
}

export interface AddOptions {
  /** Who adds it (`Backend.origin`): `config`, `api` (the default) or a discovery source. */
  origin?: string;
}

/**
 * The live set of backends of one service. Mutations fire the registry hooks, so balancers,
 * pools and health checks follow changes made from config, the admin API or plugins. Bad input
 * throws `RegistryError` (`SWITCHYARD_E_BACKEND_INVALID` 400, `_NOT_FOUND` 404, `_EXISTS` 409).
 */
export interface BackendRegistry {
  /** Backends that take new sessions, before plugin filters. Do not mutate. */
  readonly up: readonly Backend[];
  /** Every registered backend (up and draining), in insertion order. */
  list(): Backend[];
  get(address: string): Backend | undefined;
  readonly size: number;
  /** Adds a backend; `SWITCHYARD_E_BACKEND_INVALID` for a bad spec, `_EXISTS` when present. */
  add(spec: BackendSpec, options?: AddOptions): Backend;
  /**
   * Makes the backends of `origin` equal to `specs` (a discovery source's whole list, the
   * config file's on reload): adds the new, drains the gone, applies in place what changed
   * since the origin's previous list; never touches another origin's backends
   * (docs/plugin-sdk.md, "Discovery sources").
   */
  reconcile(origin: string, specs: readonly BackendSpec[]): ReconcileResult;
  /**
   * Removes a backend: no new sessions; existing sessions finish, or are closed once the drain
   * timeout passes. `SWITCHYARD_E_BACKEND_NOT_FOUND` when unknown.
   */
  remove(address: string, options?: RemoveOptions): Backend;
  /** Sets the weight (1..256). */
  setWeight(address: string, weight: number): Backend;
  /**
   * Drain (`true`): the backend stays registered but takes no new sessions; existing sessions
   * are closed after `drainTimeout` if given. Undrain (`false`): it takes sessions again.
   */
  setDraining(address: string, draining: boolean, options?: RemoveOptions): Backend;
  /**
   * A modifier plugin scales a backend's share: `effectiveWeight` becomes `weight` times the
   * product of every source's factor. `factor` is in (0, 1]; 1 withdraws the source's factor.
   * Fires `backendWeight` when `effectiveWeight` changed. Not per session: a ramp step at most.
   * A backend that leaves the registry loses its factors.
   */
  setWeightFactor(backend: Backend, source: string, factor: number): void;
  /** The factor `source` set on `backend` (1 when none). */
  weightFactor(backend: Backend, source: string): number;
}

export type ServiceState = 'new' | 'running' | 'stopping' | 'stopped';

/**
 * One proxied service: its listeners, backend registry, hooks and session table. Plugins
 * receive it in `apply(service, options)`.
 */
export interface Service extends ServiceRef {
  readonly hooks: ServiceHooks;
  readonly backends: BackendRegistry;
  /** The validated service config (durations in ms). */
  readonly config: Readonly<ServiceSettings>;
  readonly runtime: Runtime;
  /** Live sessions by id. Read-only view; close sessions with `closeSessions`. */
  readonly sessions: ReadonlyMap<number, Session>;
  /** Counters since start (accepted, rejected, retries, ...), plus connections dropped at `max_connections`. */
  readonly counters: Readonly<ServiceCounters>;
  /**
   * Live sessions: `sessions.size`, except in a cluster primary, which holds none itself and
   * answers the sum its workers last reported (up to one report interval old).
   */
  readonly sessionCount: number;
  /**
   * Bytes this process's open sessions have moved so far, per backend (`in`: read from their
   * clients, `out`: written to them). The core adds a session's bytes to `backend.bytesIn/Out`
   * only when it ends; `backend.bytesIn + open.in` never decreases, since the release adds the
   * bytes and drops the session in one turn. A session routed to another service's pool counts
   * under that pool. Includes removed backends still draining. Walks the session table: call it
   * per scrape or report, never per chunk. A cluster primary holds no sessions (empty map): its
   * backends carry the workers' as `openBytesIn/Out`.
   */
  openBytes(): Map<Backend, { in: number; out: number }>;
  readonly state: ServiceState;
  /** The bound address of each listener (useful with port 0). */
  addresses(): string[];
  /**
   * Sets `backend.status[source] = status` and fires `backendStatus` when it changed.
   * Returns whether it changed. Use the words of `BACKEND_STATUSES` where one fits.
   */
  setBackendStatus(backend: Backend, source: string, status: string): boolean;
  /**
   * Withdraws `backend.status[source]` (a slow-start ramp ended) and fires `backendStatus`
   * with status `''`. Returns whether there was one.
   */
  clearBackendStatus(backend: Backend, source: string): boolean;
  /** Shares a value with other plugins of this service (e.g. a health checker's API). Names are unique. */
  provide<T>(name: string, value: T): void;
  /** A value another plugin of this service provided; call from a start hook or later. */
  use<T>(name: string): T | undefined;
  /**
   * Closes the sessions matching `filter` (all when omitted) at once. Returns how many.
   * `detail` becomes the sessions' `closeDetail` (who closed them, e.g. `health-check`).
   */
  closeSessions(reason?: CloseReason, filter?: (s: Session) => boolean, detail?: string | null): number;
  /**
   * Registers a discovery source (a plugin that hands the whole backend list from a store);
   * call from `apply`. Its name is the `origin` of the backends it hands.
   */
  addDiscoverySource(name: string, options?: DiscoverySourceOptions): DiscoverySource;
  /** The discovery sources of this service and whether each can read its store. */
  readonly discoverySources: readonly DiscoveryStatus[];
  /** The exclusive discovery source's name, if the service has one. */
  readonly exclusiveSource: string | undefined;
  /**
   * Replaces what the service adds at start (the config's backends) by `entries`, each with its
   * origin (a state file's list). Before start only.
   */
  startWith(entries: readonly { spec: BackendSpec; origin: string }[]): void;
}

/** Process-wide hooks, for process-scope plugins (admin API, metrics). */
export interface RuntimeHooks {
  /** start — after every plugin is applied, before services start. Start servers here. */
  readonly start: AsyncParallelHook<[]>;
  /** stop — after every service has stopped (sessions drained). */
  readonly stop: AsyncSeriesHook<[]>;
}

/** The process-wide session budget derived from the open files limit. */
export interface SessionBudget {
  /** Sessions held now by every service of the process. */
  readonly active: number;
  /** Concurrent sessions allowed (Infinity when the open files limit is unknown). */
  readonly limit: number;
  /** Sessions refused at accept since start because the budget was reached. */
  readonly refused: number;
  /**
   * Connection caps of plugins' own listeners (admin API, demo backends), out of the
   * descriptors the session budget leaves aside: reserve a share in `apply`, guard the server
   * with it when listening (core/listener-budget.ts).
   */
  readonly listeners: ListenerBudget;
}

/**
 * Everything one process runs: its services and process-scope plugins, plus a small registry
 * of named values plugins share without importing each other (`provide` / `use`).
 */
export interface Runtime {
  readonly hooks: RuntimeHooks;
  /** Services by name, in config order. */
  readonly services: ReadonlyMap<string, Service>;
  readonly config: Readonly<ProcessSettings>;
  readonly log: Logger;
  /** `single` (one process), or the part this process plays in a cluster (docs/multi-process.md). */
  readonly role: RuntimeRole;
  readonly capacity: SessionBudget;
  /** The first service: the default for APIs that take an optional service name. */
  readonly defaultService: Service;
  /** Finds a service by name; undefined name means the default one. */
  service(name?: string): Service | undefined;
  /** Shares a value under a name (e.g. the admin API's route registry). Names are unique. */
  provide<T>(name: string, value: T): void;
  /** A value provided by another plugin, or undefined. Call from a start hook or later. */
  use<T>(name: string): T | undefined;
  /**
   * Adds a contribution of some kind (e.g. `admin.routes`): many plugins contribute, one
   * collects with `contributions(kind)` at start. Plugin order in the config does not matter.
   */
  contribute<T>(kind: string, value: T): void;
  contributions<T>(kind: string): readonly T[];
}
