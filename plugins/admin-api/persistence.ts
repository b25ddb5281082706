import type { Logger } from 'pino';
import {
  type Backend,
  type BackendSpec,
  formatAddress,
  ORIGIN_API,
  ORIGIN_CONFIG,
  parseAddress,
  type Runtime,
  type Service,
  STAGE,
} from '../../plugin-sdk/index.js';
import { type PersistedBackend, type PersistedService, type StateDocument, StateFile } from './state-file.js';

/**
 * Keeps operator changes across restarts. The file records, per service changed through the
 * API, the resulting list of the backends of origin `config` and `api` (spec, weight, drained
 * or not, origin). On start that list replaces the config's list before the service adds its
 * backends; services the file does not mention keep their config list. Drained backends are
 * drained again as the service adds them. Backends of a discovery source are the source's to
 * bring back, never frozen into the file; a service whose whole list comes from an exclusive
 * source (etcd-registry) is not recorded at all.
 */
export class BackendPersistence {
  readonly #file: StateFile;
  /** Services whose list the file records (loaded from it, or changed through the API). */
  readonly #managed = new Set<string>();
  /** Entries of services this config does not have: kept, so renaming a service back loses nothing. */
  #foreign: Record<string, PersistedService> = {};
  /** Each service's config list as written, before the file replaced it. */
  readonly #configLists = new Map<string, BackendSpec[]>();
  /** Addresses to drain again when the service adds them at start. */
  readonly #toDrain = new Map<Service, Set<string>>();
  /** Per service, the backend list (as `fingerprint`) the file holds or is being written with. */
  readonly #recorded = new Map<string, string>();
  /** Services with a check for changes made outside the API already queued. */
  readonly #checking = new Set<Service>();

  constructor(
    private readonly runtime: Runtime,
    path: string,
    private readonly log: Logger,
  ) {
    this.#file = new StateFile(path, () => this.#snapshot());
    for (const service of runtime.services.values()) {
      // STAGE.LATE: every other plugin sees the backend added as `up` first, then the drain.
      service.hooks.backendAdded.tap({ name: 'admin-api', stage: STAGE.LATE }, (b) =>
        this.#redrain(service, b),
      );
      // A reload (SIGHUP; one process or a cluster primary) applies the config file's edits to
      // the registry (core/reload-backends.ts). The file must follow them, or a restart would
      // bring back a backend the new config removed and drop one it added.
      const check = () => this.#queueCheck(service);
      service.hooks.backendAdded.tap({ name: 'admin-api', stage: STAGE.LATE }, check);
      service.hooks.backendRemoved.tap('admin-api', check);
      service.hooks.backendChanged.tap('admin-api', check);
    }
  }

  get path(): string {
    return this.#file.path;
  }

  /** Reads the file and swaps in the recorded lists. Call before services start. */
  async restore(): Promise<void> {
    for (const s of this.runtime.services.values()) this.#configLists.set(s.name, s.config.backends.slice());
    const doc = await this.#file.load();
    if (doc === undefined) return;
    for (const [name, saved] of Object.entries(doc.services)) {
      const service = this.runtime.services.get(name);
      if (!service || service.exclusiveSource !== undefined) {
        this.#foreign[name] = saved;
        this.log.warn(
          { service: name, file: this.path, source: service?.exclusiveSource },
          service
            ? 'state file names a service whose backends come from a discovery source; its entry is kept but not used'
            : 'state file names a service the config does not have',
        );
        continue;
      }
      const drain = new Set<string>();
      const seen = new Set<string>();
      const configAddresses = new Set(this.#configLists.get(name)!.map((b) => canonical(b.address)));
      const entries = saved.backends.map(({ draining, origin, ...spec }) => {
        const parsed = parseAddress(spec.address);
        if (typeof parsed === 'string')
          throw new Error(`state file ${this.path}: service "${name}": ${parsed}; fix or delete the file`);
        const address = formatAddress(parsed.host, parsed.port);
        if (seen.has(address))
          throw new Error(`state file ${this.path}: service "${name}": duplicate backend ${address}`);
        seen.add(address);
        if (draining === true) drain.add(address);
        // Files written before origins were recorded: what the config lists is the config's.
        const from = origin ?? (configAddresses.has(address) ? ORIGIN_CONFIG : ORIGIN_API);
        return { spec: spec as BackendSpec, origin: from };
      });
      const configList = this.#configLists.get(name)!;
      if (
        saved.config_backends !== undefined &&
        fingerprint(saved.config_backends) !== fingerprint(configList)
      )
        this.log.warn(
          { service: name, file: this.path },
          "the config's backends changed since the state file was written; the state file's list is used (delete the file to use the config's)",
        );
      service.startWith(entries);
      if (drain.size > 0) this.#toDrain.set(service, drain);
      this.#managed.add(name);
      this.#recorded.set(name, fingerprint(saved.backends));
      this.log.info(
        { service: name, backends: entries.length, draining: drain.size, file: this.path },
        'backends restored from the state file',
      );
    }
  }

  /** Records a change made through the API; resolves once it is on disk. */
  record(service: Service): Promise<void> {
    if (service.exclusiveSource !== undefined) return Promise.resolve();
    this.#managed.add(service.name);
    // This list, or a later one, is what the next write records.
    this.#recorded.set(service.name, fingerprint(persistedList(service)));
    return this.#file.save();
  }

  flush(): Promise<void> {
    return this.#file.flush();
  }

  #redrain(service: Service, backend: Backend): void {
    const pending = this.#toDrain.get(service);
    if (pending === undefined || !pending.delete(backend.address)) return;
    if (pending.size === 0) this.#toDrain.delete(service);
    service.backends.setDraining(backend.address, true);
  }

  /**
   * After a registry change in the primary: once the current task is over (a change made
   * through the API has been recorded by then, and the start's adds are all done), saves the
   * file if the service's list differs from the one it records.
   */
  #queueCheck(service: Service): void {
    if (!this.#managed.has(service.name) || this.#checking.has(service)) return;
    this.#checking.add(service);
    setImmediate(() => {
      this.#checking.delete(service);
      if (fingerprint(persistedList(service)) === this.#recorded.get(service.name)) return;
      this.log.info(
        { service: service.name, file: this.path },
        'backends changed outside the API (config reload): saving the state file',
      );
      this.#file.save().catch((err: Error) => {
        this.log.error(
          { err, file: this.path },
          'cannot save the state file; a restart would lose the reloaded backends',
        );
      });
    });
  }

  #snapshot(): StateDocument {
    const services: Record<string, PersistedService> = { ...this.#foreign };
    for (const name of this.#managed) {
      const service = this.runtime.services.get(name)!;
      const backends = persistedList(service);
      this.#recorded.set(name, fingerprint(backends));
      services[name] = { backends, config_backends: this.#configLists.get(name) ?? [] };
    }
    return { version: 1, updated_at: new Date().toISOString(), services };
  }
}

/** The backends the file records: those of the config and the API, not a discovery source's. */
function persistedList(service: Service): PersistedBackend[] {
  const out: PersistedBackend[] = [];
  for (const b of service.backends.list())
    if (b.origin === ORIGIN_CONFIG || b.origin === ORIGIN_API) out.push(persisted(b));
  return out;
}

function persisted(b: Backend): PersistedBackend {
  const entry: PersistedBackend = { ...b.spec, address: b.address, weight: b.weight, origin: b.origin };
  if (b.state === 'draining') entry.draining = true;
  return entry;
}

function canonical(address: string): string {
  const parsed = parseAddress(address);
  return typeof parsed === 'string' ? address : formatAddress(parsed.host, parsed.port);
}

/** Text form of a backend list that ignores key order and written-out defaults, to notice config edits. */
function fingerprint(list: readonly BackendSpec[]): string {
  return JSON.stringify(
    list.map((b) => {
      const parsed = parseAddress(b.address);
      const norm: Record<string, unknown> = {
        ...b,
        address: typeof parsed === 'string' ? b.address : formatAddress(parsed.host, parsed.port),
        weight: b.weight ?? 1,
        tls: b.tls === true,
        insecure_skip_verify: b.insecure_skip_verify === true,
      };
      return Object.keys(norm)
        .sort()
        .map((k) => [k, norm[k]]);
    }),
  );
}
