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
 * source (etcd-registry) is not recorded at all. Changes go to a journal as they happen
 * (state-file.ts), folded into the document when it outgrows it and at stop.
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
  /** How many backends each service restored from the file adds at start. */
  readonly #startCounts = new Map<Service, number>();
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
        // A discovery source's backends are the source's to bring back: not recorded. (One the
        // config handed over to a source leaves the file at the next fold, at the latest at stop.)
        if (service.exclusiveSource !== undefined || !isRecorded(backend)) return;
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
      this.#startCounts.set(service, entries.length);
      if (drain.size > 0) this.#toDrain.set(service, drain);
      this.#managed.add(name);
      this.log.info(
        { service: name, backends: entries.length, draining: drain.size, file: this.path },
        'backends restored from the state file',
      );
    }
  }

  /**
   * Records a change made through the API (already applied to the registry); resolves once it
   * is on disk. Changes that arrive while a write runs share the next one (group commit).
   */
  record(service: Service): Promise<void> {
    if (service.exclusiveSource !== undefined) return Promise.resolve();
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
      list: persistedList(service),
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
      const expected =
        this.#startCounts.get(service) ??
        (service.exclusiveSource !== undefined ? 0 : service.config.backends.length);
      if (service.backends.size < expected && turns < 100) this.#goLive(service, turns + 1);
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
      const backends = persistedList(service);
      services[name] = { backends, config_backends: this.#configLists.get(name) ?? [] };
    }
    return { version: 1, updated_at: new Date().toISOString(), services };
  }
}

/** Backends the file records: those of the config and the API, not a discovery source's. */
function isRecorded(b: Backend): boolean {
  return b.origin === ORIGIN_CONFIG || b.origin === ORIGIN_API;
}

function persistedList(service: Service): PersistedBackend[] {
  const out: PersistedBackend[] = [];
  for (const b of service.backends.list()) if (isRecorded(b)) out.push(persisted(b));
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
