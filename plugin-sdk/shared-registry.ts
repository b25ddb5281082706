import type { RemoveOptions, Service } from '../core/contract.js';
import type { Backend, BackendSpec } from '../core/types.js';

/**
 * The capability of a plugin that keeps backends in a store shared by several Switchyard
 * instances (etcd-registry). Such a plugin declares `provides: [REGISTRY_WRITER]` and
 * `runtime.provide(REGISTRY_WRITER, writer)`; admin-api then sends the changes of the services
 * the writer `holds` to it instead of changing the local registry, so they reach every
 * instance. Never import the providing plugin: ask `runtime.use(REGISTRY_WRITER)` at start.
 */
export const REGISTRY_WRITER = 'registry-writer';

/** A change of an existing backend (admin `PATCH`). */
export interface BackendChange {
  weight?: number;
  draining?: boolean;
  /** With `draining: true`: close the remaining sessions after this many ms. */
  drainTimeout?: number;
}

/**
 * Writes backend changes to the shared store. Each call resolves once this instance's own
 * registry has applied the change (read-your-writes: a client that adds a backend and then
 * connects is routed to it), with the backend as it is here. It rejects with `RegistryError`:
 * 400/404/409 for a bad request, and code `SWITCHYARD_E_REGISTRY_UNAVAILABLE` (status 503)
 * when the store cannot be reached — it never falls back to changing only the local registry.
 */
export interface RegistryWriter {
  /** The providing plugin's name, for messages and logs. */
  readonly name: string;
  /** Whether this service's backends live in the store (the others stay local). */
  holds(service: Service): boolean;
  add(service: Service, spec: BackendSpec): Promise<Backend>;
  /** Resolves with the backend as it was when it left (state `removed`). */
  remove(service: Service, address: string, options?: RemoveOptions): Promise<Backend>;
  update(service: Service, address: string, change: BackendChange): Promise<Backend>;
}

/**
 * The capability of a plugin that shares process-wide switches between instances
 * (etcd-registry): force-disconnect turned on at one instance turns on at all of them.
 * Provided with `runtime.provide(SHARED_SWITCHES, switches)` and declared in `provides`.
 */
export const SHARED_SWITCHES = 'shared-switches';

export interface SharedSwitches {
  /** Sets the switch for every instance; resolves once this instance has seen it. Rejects like a `RegistryWriter`. */
  set(name: string, enabled: boolean): Promise<void>;
  /**
   * Calls `onChange` for every change of the switch, made at any instance, and once as soon as
   * the stored value is known (at start). Call from a start hook or later (`runtime.use` needs every plugin applied).
   */
  watch(name: string, onChange: (enabled: boolean) => void): void;
}
