import type { Logger } from 'pino';
import {
  type Backend,
  type BackendSpec,
  formatAddress,
  parseAddress,
  type Runtime,
  type Service,
  type ServiceSettings,
  STAGE,
} from '../../plugin-sdk/index.js';
import { type PersistedBackend, type PersistedService, type StateDocument, StateFile } from './state-file.js';

/**
 * Keeps operator changes across restarts. The file records, per service changed through the
 * API, the resulting backend list (spec, weight, drained or not). On start that list replaces
 * the config's list before the service adds its backends; services the file does not mention
 * keep their config list. Drained backends are drained again as the service adds them.
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
  /**
   * Registry changes journaled per service, and the count API calls account for: changes
   * above it came from elsewhere (a config reload), which is logged, and whose write has no
   * caller to report a failure to.
   */
  readonly #changes = new Map<Service, number>();
  readonly #covered = new Map<Service, number>();
  /** Services done adding their start list: their registry changes are journaled. */
  readonly #live = new Set<Service>();
  /** Services whose whole list was journaled in this run. */
  readonly #listed = new Set<Service>();
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
      // Every change of a recorded service goes to the journal as it happens, whoever made it:
      // the API, or a reload (SIGHUP; one process or a cluster primary) applying the config
      // file's edits (core/reload-backends.ts) — else a restart would bring back a backend the
      // new config removed and drop one it added. Changes while the service starts (its config
      // or restored list, drains re-applied) are what the file already says: not journaled.
      const changed = (backend: Backend, removed: boolean) => {
        if (!this.#live.has(service) || !this.#managed.has(service.name)) return;
        if (!this.#appendList(service))
          this.#file.append(
            removed
              ? { service: service.name, remove: backend.address }
              : { service: service.name, set: persisted(backend) },
          );
        this.#changes.set(service, (this.#changes.get(service) ?? 0) + 1);
        this.#queueCheck(service);
      };
      // The service adds its start list synchronously right after its start hook; the last
      // start tap marks it live once those adds are done.
      service.hooks.start.tap({ name: 'admin-api', stage: 10 * STAGE.LATE }, () => this.#goLive(service));
      service.hooks.backendAdded.tap({ name: 'admin-api', stage: STAGE.LATE }, (b) => changed(b, false));
      service.hooks.backendRemoved.tap('admin-api', (b) => changed(b, true));
      service.hooks.backendChanged.tap('admin-api', (b) => changed(b, false));
    }
  }

  get path(): string {
    return this.#file.path;
  }

  /** Reads the file and swaps in the recorded lists. Call before services start. */
  async restore(): Promise<void> {
    for (const s of this.runtime.services.values()) this.#configLists.set(s.name, s.config.backends.slice());
    const doc = await this.#file.load((line) =>
      this.log.warn(
        { file: this.#file.journalPath, line },
        'state file journal ends with a torn line (a crash while writing a change that was never acknowledged): dropped',
      ),
    );
    if (doc === undefined) return;
    for (const [name, saved] of Object.entries(doc.services)) {
      const service = this.runtime.services.get(name);
      if (!service) {
        this.#foreign[name] = saved;
        this.log.warn(
          { service: name, file: this.path },
          'state file names a service the config does not have',
        );
        continue;
      }
      const drain = new Set<string>();
      const seen = new Set<string>();
      const specs = saved.backends.map(({ draining, ...spec }) => {
        const parsed = parseAddress(spec.address);
        if (typeof parsed === 'string')
          throw new Error(`state file ${this.path}: service "${name}": ${parsed}; fix or delete the file`);
        const address = formatAddress(parsed.host, parsed.port);
        if (seen.has(address))
          throw new Error(`state file ${this.path}: service "${name}": duplicate backend ${address}`);
        seen.add(address);
        if (draining === true) drain.add(address);
        return spec as BackendSpec;
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
      startFrom(service, specs);
      if (drain.size > 0) this.#toDrain.set(service, drain);
      this.#managed.add(name);
      this.log.info(
        { service: name, backends: specs.length, draining: drain.size, file: this.path },
        'backends restored from the state file',
      );
    }
  }

  /**
   * Records a change made through the API (already applied to the registry); resolves once it
   * is on disk. Changes that arrive while a write runs share the next one (group commit).
   */
  record(service: Service): Promise<void> {
    this.#managed.add(service.name);
    this.#appendList(service);
    this.#covered.set(service, this.#changes.get(service) ?? 0);
    return this.#file.durable();
  }

  /**
   * The first change of a service in this run goes to the journal as its whole list, with the
   * config's list of this run (so a "config's backends changed" warning is not repeated at the
   * next start); later ones as single changes. False when the list was journaled already.
   */
  #appendList(service: Service): boolean {
    if (this.#listed.has(service)) return false;
    this.#listed.add(service);
    this.#file.append({
      service: service.name,
      list: service.backends.list().map(persisted),
      config_backends: this.#configLists.get(service.name) ?? [],
    });
    return true;
  }

  /** Waits for writes in flight and folds the journal into the document (stop). */
  flush(): Promise<void> {
    return this.#file.close();
  }

  /** Marks the service live after its start adds (checked: a few turns at most, never a spin). */
  #goLive(service: Service, turns = 0): void {
    setImmediate(() => {
      if (service.state !== 'running') return;
      if (service.backends.size < service.config.backends.length && turns < 100)
        this.#goLive(service, turns + 1);
      else this.#live.add(service);
    });
  }

  #redrain(service: Service, backend: Backend): void {
    const pending = this.#toDrain.get(service);
    if (pending === undefined || !pending.delete(backend.address)) return;
    if (pending.size === 0) this.#toDrain.delete(service);
    service.backends.setDraining(backend.address, true);
  }

  /**
   * After a journaled change: once the current task is over (a change made through the API
   * has been recorded by then), logs changes no API call accounts for and reports their
   * write's failure, since no caller waits for it.
   */
  #queueCheck(service: Service): void {
    if (this.#checking.has(service)) return;
    this.#checking.add(service);
    setImmediate(() => {
      this.#checking.delete(service);
      const changes = this.#changes.get(service) ?? 0;
      if (changes <= (this.#covered.get(service) ?? 0)) return;
      this.#covered.set(service, changes);
      this.log.info(
        { service: service.name, file: this.path },
        'backends changed outside the API (config reload): saving the state file',
      );
      this.#file.durable().catch((err: Error) => {
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
      const backends = service.backends.list().map(persisted);
      services[name] = { backends, config_backends: this.#configLists.get(name) ?? [] };
    }
    return { version: 1, updated_at: new Date().toISOString(), services };
  }
}

/**
 * Makes the service start with `specs` instead of its config's list. The service gets a copy
 * of its config rather than a change to the shared one: a cluster primary keeps that object as
 * the config file it read, and on reload (SIGHUP) applies only what the file changed since;
 * seeing the state file's list there, it would drop every backend added through the API and
 * bring back every one removed.
 */
function startFrom(service: Service, specs: BackendSpec[]): void {
  (service as { config: ServiceSettings }).config = { ...service.config, backends: specs };
}

function persisted(b: Backend): PersistedBackend {
  const entry: PersistedBackend = { ...b.spec, address: b.address, weight: b.weight };
  if (b.state === 'draining') entry.draining = true;
  return entry;
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
