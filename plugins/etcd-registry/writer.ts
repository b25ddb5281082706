import type { Etcd3 } from 'etcd3';
import {
  type Backend,
  type BackendChange,
  type BackendSpec,
  isSwitchyardError,
  RegistryError,
  type RegistryWriter,
  type RemoveOptions,
  type Service,
  type SharedSwitches,
  UPSTREAM_TLS,
} from '../../plugin-sdk/index.js';
import type { KeyLayout } from './keys.js';
import { canonicalOrNull, type EtcdStore, type Managed } from './store.js';

/** Read-modify-write attempts when another instance changed the same key in between. */
const CAS_ATTEMPTS = 5;

/**
 * Admin changes written to etcd (the `REGISTRY_WRITER` admin-api uses): each call writes, then
 * waits until this instance's own watch has applied the write, so the answer describes the
 * backend as it is here, and every other instance applies the same write from its watch.
 * Compare-and-set transactions keep concurrent admins on several instances from losing each
 * other's changes.
 */
export class EtcdWriter implements RegistryWriter, SharedSwitches {
  readonly name = 'etcd-registry';

  constructor(
    private readonly store: EtcdStore,
    private readonly keys: KeyLayout,
    private readonly managed: ReadonlyMap<string, Managed>,
    private readonly endpoints: readonly string[],
  ) {}

  holds(service: Service): boolean {
    return this.managed.get(service.name)?.service === service;
  }

  async add(service: Service, spec: BackendSpec): Promise<Backend> {
    const address = this.#address(spec.address);
    const weight = spec.weight ?? 1;
    if (!Number.isInteger(weight) || weight < 1 || weight > 256)
      throw new RegistryError(
        'SWITCHYARD_E_BACKEND_INVALID',
        'backend weight must be an integer from 1 to 256',
      );
    if (spec.tls === true && !providesTls(service))
      throw new RegistryError(
        'SWITCHYARD_E_BACKEND_INVALID',
        `backend ${address} has tls: true, but no plugin that dials TLS is enabled in service ${service.name}`,
      );
    const key = this.keys.backend(service.name, address);
    const client = this.#client;
    const res = await this.#etcd(() =>
      client
        .if(key, 'Create', '==', 0)
        .then(client.put(key).value(JSON.stringify({ ...spec, address })))
        .commit(),
    );
    if (!res.succeeded)
      throw new RegistryError('SWITCHYARD_E_BACKEND_EXISTS', `backend ${address} already exists (in etcd)`);
    await this.store.waitApplied(Number(res.header.revision));
    return this.#local(service, address, 'added');
  }

  async remove(service: Service, address: string, options: RemoveOptions = {}): Promise<Backend> {
    const canonical = this.#address(address);
    const before = service.backends.get(canonical);
    const key = this.keys.backend(service.name, canonical);
    // A drain timeout travels in the value (every instance reads it when the key goes away).
    const revision = await this.#modify(key, canonical, (spec) =>
      options.drainTimeout === undefined ? null : { ...spec, drain_timeout: options.drainTimeout },
    );
    const client = this.#client;
    const res = await this.#etcd(() => client.delete().key(key).exec());
    if (res.deleted === '0' || Number(res.deleted) === 0)
      throw new RegistryError('SWITCHYARD_E_BACKEND_NOT_FOUND', `no backend ${canonical} (in etcd)`);
    await this.store.waitApplied(Math.max(revision, Number(res.header.revision)));
    if (before === undefined) return this.#local(service, canonical, 'removed');
    return before;
  }

  async update(service: Service, address: string, change: BackendChange): Promise<Backend> {
    const canonical = this.#address(address);
    if (
      change.weight !== undefined &&
      (!Number.isInteger(change.weight) || change.weight < 1 || change.weight > 256)
    )
      throw new RegistryError('SWITCHYARD_E_BACKEND_INVALID', 'weight must be an integer from 1 to 256');
    const key = this.keys.backend(service.name, canonical);
    const revision = await this.#modify(key, canonical, (spec) => {
      const next: BackendSpec = { ...spec };
      if (change.weight !== undefined) next.weight = change.weight;
      if (change.draining === true) {
        next.draining = true;
        if (change.drainTimeout !== undefined) next.drain_timeout = change.drainTimeout;
      } else if (change.draining === false) {
        delete next.draining;
        delete next.drain_timeout;
      }
      return next;
    });
    await this.store.waitApplied(revision);
    return this.#local(service, canonical, 'changed');
  }

  async set(name: string, enabled: boolean): Promise<void> {
    const key = this.keys.switch(name);
    const client = this.#client;
    const res = await this.#etcd(() => client.put(key).value(JSON.stringify({ enabled })).exec());
    await this.store.waitApplied(Number(res.header.revision));
  }

  watch(name: string, onChange: (enabled: boolean) => void): void {
    this.store.watchSwitch(name, onChange);
  }

  get #client(): Etcd3 {
    return this.store.client;
  }

  #address(address: string): string {
    const canonical = canonicalOrNull(address);
    if (canonical === null)
      throw new RegistryError(
        'SWITCHYARD_E_BACKEND_INVALID',
        `backend address "${address}" is not host:port`,
      );
    return canonical;
  }

  /**
   * Rewrites a backend's value with `change` (null: leave it) if nobody else wrote it in
   * between; retried when someone did. 404 when the key is not there. Returns the revision
   * of the write (or of the read, when nothing was written).
   */
  async #modify(
    key: string,
    address: string,
    change: (spec: BackendSpec) => BackendSpec | null,
  ): Promise<number> {
    const client = this.#client;
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const got = await this.#etcd(() => client.get(key).exec());
      const kv = got.kvs[0];
      if (kv === undefined)
        throw new RegistryError('SWITCHYARD_E_BACKEND_NOT_FOUND', `no backend ${address} (in etcd)`);
      let spec: BackendSpec;
      try {
        spec = { ...(JSON.parse(kv.value.toString()) as BackendSpec), address };
      } catch {
        spec = { address };
      }
      const next = change(spec);
      if (next === null) return Number(got.header.revision);
      const res = await this.#etcd(() =>
        client
          .if(key, 'Mod', '==', kv.mod_revision)
          .then(client.put(key).value(JSON.stringify(next)))
          .commit(),
      );
      if (res.succeeded) return Number(res.header.revision);
    }
    throw new RegistryError(
      'SWITCHYARD_E_REGISTRY_UNAVAILABLE',
      `backend ${address} kept changing in etcd while this change was tried ${CAS_ATTEMPTS} times; retry`,
    );
  }

  /** An etcd call; any failure to reach or use etcd is a 503 that says nothing changed here. */
  async #etcd<T>(call: () => Promise<T>): Promise<T> {
    // Tried even while the watch says etcd is down: it may be back before the watch noticed.
    try {
      return await call();
    } catch (err) {
      if (isSwitchyardError(err)) throw err;
      throw new RegistryError(
        'SWITCHYARD_E_REGISTRY_UNAVAILABLE',
        `etcd (${this.endpoints.join(', ')}) did not take the change: ${(err as Error).message.split('. Last error:')[0]}; nothing was changed on this instance, retry when etcd is back`,
      );
    }
  }

  /** The backend as this instance's registry has it once the write was applied. */
  #local(service: Service, address: string, what: string): Backend {
    const backend = service.backends.get(address);
    if (backend !== undefined) return backend;
    throw new RegistryError(
      'SWITCHYARD_E_BACKEND_INVALID',
      `backend ${address} was ${what} in etcd, but this instance's registry does not have it (see its log: the registry refused the entry)`,
    );
  }
}

/** Whether a plugin of the service dials `tls: true` backends (`provides: ['upstream-tls']`). */
function providesTls(service: Service): boolean {
  return service.config.plugins.some((u) =>
    (u as { plugin?: { provides?: string[] } }).plugin?.provides?.includes(UPSTREAM_TLS),
  );
}
