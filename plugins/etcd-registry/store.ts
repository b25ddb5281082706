import { ExponentialBackoff, handleWhen, noop, retry } from 'cockatiel';
import {
  Etcd3,
  type IKeyValue,
  type IOptions,
  type IWatchResponse,
  isRecoverableError,
  type Watcher,
} from 'etcd3';
import type { Logger } from 'pino';
import {
  type BackendSpec,
  type DiscoverySource,
  formatAddress,
  parseAddress,
  RegistryError,
  type Service,
} from '../../plugin-sdk/index.js';
import type { KeyLayout } from './keys.js';
import type { EtcdSettings } from './options.js';

/** One service whose backends live in etcd: the core's source for it, and its config list (the seed). */
export interface Managed {
  service: Service;
  source: DiscoverySource;
}

type WatchBackoff = NonNullable<NonNullable<IOptions['faultHandling']>['watchBackoff']>;

interface Waiter {
  revision: number;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** Between full re-reads that fail (etcd unreachable at start, or after a cancelled watch). */
const RETRY_MIN = 250;
const RETRY_MAX = 5_000;

/**
 * The etcd side of the plugin: one client, one watch on the prefix for every service.
 *
 * - Start: reads the prefix (seeding empty services from the config), hands each service its
 *   list, then watches from the next revision.
 * - Watch events update the lists; each service's whole list goes to its discovery source,
 *   which reconciles the registry. `revision` is the last revision applied here; a watch that
 *   reconnects resumes from it, so changes made meanwhile arrive as events.
 * - A watch cancelled by etcd (its revision was compacted away) or a disconnect longer than
 *   `resync_after`: a full re-read, as at start.
 * - Unreachable: every source reports it (`/readyz` degraded, metrics), the registry keeps its
 *   last lists, and writes fail (503).
 */
export class EtcdStore {
  readonly client: Etcd3;
  /** Per service: address → spec as etcd holds it. */
  readonly #lists = new Map<string, Map<string, BackendSpec>>();
  readonly #switches = new Map<string, boolean>();
  readonly #switchWatchers = new Map<string, Array<(enabled: boolean) => void>>();
  #revision = 0;
  #watcher: Watcher | undefined;
  #reachable = true;
  #disconnectedAt: number | null = null;
  #waiters: Waiter[] = [];
  #syncing: Promise<boolean> | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #retries = 0;
  #stopped = false;
  #seedPending = true;
  /** Keys whose value was refused, so a bad value is logged once, not at every re-read. */
  readonly #badValues = new Set<string>();
  /** Per service: address → why the registry refused its spec last time (see #hand). */
  readonly #refused = new Map<string, Map<string, string>>();

  constructor(
    private readonly settings: EtcdSettings,
    private readonly keys: KeyLayout,
    private readonly managed: ReadonlyMap<string, Managed>,
    private readonly log: Logger,
  ) {
    const others = settings.endpoints.length - 1;
    this.client = new Etcd3({
      hosts: settings.endpoints,
      ...(settings.auth === undefined ? {} : { auth: settings.auth }),
      ...(settings.credentials === undefined ? {} : { credentials: settings.credentials }),
      dialTimeout: settings.requestTimeout,
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + settings.requestTimeout }),
      // The client's defaults hold a host for 5 s behind a breaker after 3 failures and back
      // the watch off up to 30 s: an instance would notice etcd's return that late. Here a
      // failed call fails at once (the next endpoint is tried), and the watch retries within 2 s.
      faultHandling: {
        host: () => noop,
        // Each retry goes to another endpoint.
        global: others === 0 ? noop : retry(handleWhen(isRecoverableError), { maxAttempts: others }),
        // The client takes a backoff factory here at run time (it calls `.next()` first); its
        // typings predate cockatiel 3's split of factory and backoff.
        watchBackoff: new ExponentialBackoff({
          initialDelay: 100,
          maxDelay: 2_000,
        }) as unknown as WatchBackoff,
      },
      grpcOptions: {
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 2_000,
        // Notice a peer that vanished without a reset (a partition) within ~15 s.
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
      },
    });
  }

  /** The last etcd revision this instance applied. */
  get revision(): number {
    return this.#revision;
  }

  get reachable(): boolean {
    return this.#reachable;
  }

  /**
   * First read, before the services start. When etcd cannot be reached, every service starts
   * from its config's backends (logged) and the read is retried until it succeeds.
   */
  async start(): Promise<void> {
    if (await this.#sync('start')) return;
    for (const { service, source } of this.managed.values()) source.update(service.config.backends);
    this.log.error(
      { endpoints: this.settings.endpoints },
      "etcd-registry: etcd unreachable at start; serving the config's backends until it answers",
    );
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    this.#dropWatcher();
    for (const w of this.#waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new RegistryError('SWITCHYARD_E_REGISTRY_UNAVAILABLE', 'shutting down'));
    }
    this.client.close();
  }

  /** The list etcd holds for a service, as last applied here. */
  listOf(service: string): ReadonlyMap<string, BackendSpec> {
    return this.#lists.get(service) ?? new Map();
  }

  /** Resolves once this instance has applied `revision` (its own watch delivered it). */
  waitApplied(revision: number): Promise<void> {
    if (this.#revision >= revision) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        revision,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters = this.#waiters.filter((w) => w !== waiter);
          reject(
            new RegistryError(
              'SWITCHYARD_E_REGISTRY_UNAVAILABLE',
              `written to etcd (revision ${revision}), but this instance has not applied it within ${this.settings.applyTimeout} ms (its watch is behind or disconnected); every instance applies it once its watch catches up`,
            ),
          );
        }, this.settings.applyTimeout),
      };
      this.#waiters.push(waiter);
    });
  }

  /** Calls `onChange` on every change of a switch, and now if its value is known. */
  watchSwitch(name: string, onChange: (enabled: boolean) => void): void {
    const list = this.#switchWatchers.get(name) ?? [];
    list.push(onChange);
    this.#switchWatchers.set(name, list);
    const known = this.#switches.get(name);
    if (known !== undefined) onChange(known);
  }

  /**
   * Reads the whole prefix and replaces what this instance holds (seeding services that have
   * nothing yet, at the first read), then watches from the next revision. Resolves false (and
   * schedules a retry) when etcd cannot be read. One at a time.
   */
  #sync(why: string): Promise<boolean> {
    this.#syncing ??= this.#doSync(why).finally(() => {
      this.#syncing = undefined;
    });
    return this.#syncing;
  }

  async #doSync(why: string): Promise<boolean> {
    if (this.#stopped) return false;
    clearTimeout(this.#retryTimer);
    this.#dropWatcher();
    try {
      let range = await this.client.getAll().prefix(this.keys.prefix).exec();
      if (this.#seedPending && (await this.#seed(range.kvs)))
        range = await this.client.getAll().prefix(this.keys.prefix).exec();
      this.#seedPending = false;
      this.#replaceAll(range.kvs, Number(range.header.revision));
      this.#retries = 0;
      this.log.info(
        { revision: this.#revision, why, keys: range.kvs.length },
        'etcd-registry: read the prefix; watching from the next revision',
      );
      this.#setReachable(true);
      this.#watch();
      return true;
    } catch (err) {
      this.#setReachable(false, err as Error);
      const delay = Math.min(RETRY_MAX, RETRY_MIN * 2 ** Math.min(this.#retries++, 10));
      this.#retryTimer = setTimeout(() => void this.#sync('retry'), delay);
      this.#retryTimer.unref();
      return false;
    }
  }

  /**
   * Services with no backend key and no `seeded` marker get the config's backends, with the
   * marker, in one transaction per service: of several instances starting together one seeds;
   * a service an operator emptied later is not seeded again. Returns whether any was seeded.
   */
  async #seed(kvs: IKeyValue[]): Promise<boolean> {
    const present = new Set<string>();
    for (const kv of kvs) {
      const key = kv.key.toString();
      const parsed = this.keys.parse(key);
      if (parsed.kind === 'backend') present.add(parsed.service);
      for (const name of this.managed.keys()) if (key === this.keys.seeded(name)) present.add(name);
    }
    let seeded = false;
    for (const [name, { service }] of this.managed) {
      if (present.has(name)) continue;
      const specs = service.config.backends.map((b) => ({ ...b, address: canonical(b.address) }));
      const marker = JSON.stringify({ at: new Date().toISOString(), backends: specs.length });
      const res = await this.client
        .if(this.keys.seeded(name), 'Create', '==', 0)
        .then(
          this.client.put(this.keys.seeded(name)).value(marker),
          ...specs.map((s) => this.client.put(this.keys.backend(name, s.address)).value(JSON.stringify(s))),
        )
        .commit();
      if (res.succeeded) {
        seeded = true;
        this.log.info(
          { service: name, backends: specs.length, prefix: this.keys.backendsOf(name) },
          "etcd-registry: no backends in etcd for this service yet; seeded them from the config's",
        );
      }
    }
    return seeded;
  }

  #replaceAll(kvs: IKeyValue[], revision: number): void {
    const fresh = new Map<string, Map<string, BackendSpec>>();
    for (const name of this.managed.keys()) fresh.set(name, new Map());
    const switches = new Map<string, boolean>();
    for (const kv of kvs) this.#absorb(kv, fresh, switches);
    this.#lists.clear();
    for (const [name, list] of fresh) this.#lists.set(name, list);
    for (const name of this.managed.keys()) this.#hand(name);
    for (const name of new Set([...this.#switches.keys(), ...switches.keys()]))
      this.#setSwitch(name, switches.get(name) ?? false);
    // A full read sets the revision, even lower (a restored store); events only move it forward.
    this.#revision = revision;
    this.#advance(revision);
  }

  /** Reads one key into `lists` / `switches`; refused values are logged once per key and value. */
  #absorb(kv: IKeyValue, lists: Map<string, Map<string, BackendSpec>>, switches: Map<string, boolean>): void {
    const key = kv.key.toString();
    const parsed = this.keys.parse(key);
    if (parsed.kind === 'switch') {
      switches.set(parsed.name, this.#switchValue(key, kv.value.toString()));
      return;
    }
    if (parsed.kind !== 'backend') return;
    const list = lists.get(parsed.service);
    if (list === undefined) return; // a service this instance does not have, or does not keep here
    const spec = this.#specOf(key, parsed.address, kv.value.toString(), kv.mod_revision);
    if (spec !== undefined) list.set(spec.address, spec);
  }

  #watch(): void {
    const watcher = this.client.watch().prefix(this.keys.prefix).watcher();
    this.#watcher = watcher;
    // Every (re)connection asks for the revision after the last one applied here: etcd replays
    // what happened while this instance was away. (The client would resume from the revision
    // of its last create response instead, which can skip events not yet delivered.)
    watcher.on('connecting', () => {
      watcher.request.start_revision = String(this.#revision + 1);
    });
    watcher.on('connected', (res: IWatchResponse) => {
      if (watcher !== this.#watcher) return;
      // A store behind what was applied here was restored or replaced: resuming would wait
      // for revisions it may never reach. Read it again instead.
      if (Number(res.header.revision) < this.#revision) {
        void this.#sync('etcd is at an older revision than this instance (restored or replaced)');
        return;
      }
      const away = this.#disconnectedAt === null ? 0 : Date.now() - this.#disconnectedAt;
      if (away > this.settings.resyncAfter) {
        void this.#sync(`disconnected for ${Math.round(away / 1000)} s`);
        return;
      }
      this.#setReachable(true);
    });
    watcher.on('data', (res: IWatchResponse) => {
      if (watcher === this.#watcher) this.#onWatch(res);
    });
    watcher.on('disconnected', (err: Error) => {
      if (watcher === this.#watcher) this.#setReachable(false, err);
    });
    // etcd cancelled the watch: its start revision was compacted, or another refusal.
    watcher.on('error', (err: Error) => {
      if (watcher !== this.#watcher) return;
      this.log.warn(
        { err: err.message, revision: this.#revision },
        'etcd-registry: watch cancelled by etcd (revision compacted?); re-reading the prefix',
      );
      void this.#sync('watch cancelled');
    });
  }

  #dropWatcher(): void {
    const w = this.#watcher;
    this.#watcher = undefined;
    if (w === undefined) return;
    w.cancel().catch(() => {});
  }

  #onWatch(res: IWatchResponse): void {
    const touched = new Set<string>();
    let revision = 0;
    for (const event of res.events) {
      const key = event.kv.key.toString();
      revision = Math.max(revision, Number(event.kv.mod_revision));
      const parsed = this.keys.parse(key);
      if (parsed.kind === 'switch') {
        this.#setSwitch(
          parsed.name,
          event.type === 'Delete' ? false : this.#switchValue(key, event.kv.value.toString()),
        );
        continue;
      }
      if (parsed.kind !== 'backend') continue;
      const list = this.#lists.get(parsed.service);
      if (list === undefined) continue;
      const address = canonicalOrNull(parsed.address);
      if (event.type === 'Delete') {
        if (address !== null) list.delete(address);
      } else {
        const spec = this.#specOf(key, parsed.address, event.kv.value.toString(), event.kv.mod_revision);
        if (spec !== undefined) list.set(spec.address, spec);
        else if (address !== null) list.delete(address); // a bad new value: the backend goes
      }
      touched.add(parsed.service);
    }
    for (const name of touched) this.#hand(name);
    // A response without events (progress notification) still says how far the store is.
    this.#advance(res.events.length > 0 ? revision : Number(res.header.revision));
  }

  /** Hands a service's whole list to its source, and logs what changed. */
  #hand(name: string): void {
    const managed = this.managed.get(name);
    const list = this.#lists.get(name);
    if (managed === undefined || list === undefined) return;
    const result = managed.source.update([...list.values()]);
    const { added, removed, updated } = result;
    if (added.length + removed.length + updated.length > 0)
      this.log.info({ service: name, added, removed, updated }, 'etcd-registry: backends changed');
    for (const c of result.conflicts)
      this.log.warn(
        { service: name, backend: c.address, owner: c.owner },
        'etcd-registry: a backend in etcd is in the service already from another origin; that one keeps it',
      );
    // Logged when a spec is first refused (or refused for another reason), not at every change
    // of the service's list while it stays in etcd.
    const refused = new Map<string, string>();
    for (const i of result.invalid) {
      refused.set(i.address, i.error);
      if (this.#refused.get(name)?.get(i.address) === i.error) continue;
      this.log.error(
        { service: name, backend: i.address, error: i.error },
        'etcd-registry: backend in etcd refused by the registry',
      );
    }
    this.#refused.set(name, refused);
  }

  #advance(revision: number): void {
    if (revision > this.#revision) this.#revision = revision;
    if (this.#waiters.length === 0) return;
    const done = this.#waiters.filter((w) => w.revision <= this.#revision);
    if (done.length === 0) return;
    this.#waiters = this.#waiters.filter((w) => w.revision > this.#revision);
    for (const w of done) {
      clearTimeout(w.timer);
      w.resolve();
    }
  }

  #setSwitch(name: string, enabled: boolean): void {
    if (this.#switches.get(name) === enabled) return;
    this.#switches.set(name, enabled);
    for (const fn of this.#switchWatchers.get(name) ?? []) {
      try {
        fn(enabled);
      } catch (err) {
        this.log.error({ err, switch: name }, 'etcd-registry: a switch watcher threw');
      }
    }
  }

  #setReachable(reachable: boolean, err?: Error): void {
    if (reachable) this.#disconnectedAt = null;
    else this.#disconnectedAt ??= Date.now();
    const detail = reachable
      ? undefined
      : `cannot reach etcd (${this.settings.endpoints.join(', ')}): ${shortError(err)}`;
    for (const { source } of this.managed.values()) source.setStatus(reachable, detail);
    if (reachable === this.#reachable) return;
    this.#reachable = reachable;
    if (reachable)
      this.log.info(
        { revision: this.#revision },
        'etcd-registry: etcd reachable again; watching from the last revision',
      );
    else
      this.log.warn(
        { endpoints: this.settings.endpoints, err: shortError(err) },
        'etcd-registry: etcd unreachable; serving the last known backends, admin changes refused until it is back',
      );
  }

  /** A backend value: JSON object; its address, when given, must be the key's. */
  #specOf(key: string, keyAddress: string, text: string, revision: string): BackendSpec | undefined {
    const address = canonicalOrNull(keyAddress);
    let problem: string | undefined;
    let value: unknown;
    if (address === null) problem = `the key's address "${keyAddress}" is not host:port`;
    else {
      try {
        value = JSON.parse(text);
      } catch {
        problem = 'the value is not JSON';
      }
      if (problem === undefined && (typeof value !== 'object' || value === null || Array.isArray(value)))
        problem = 'the value is not a JSON object';
      const given = (value as { address?: unknown } | undefined)?.address;
      if (
        problem === undefined &&
        given !== undefined &&
        (typeof given !== 'string' || canonicalOrNull(given) !== address)
      )
        problem = `its "address" (${JSON.stringify(given)}) is not the key's (${address})`;
    }
    if (problem !== undefined) {
      const mark = `${key}@${revision}`;
      if (!this.#badValues.has(mark)) {
        this.#badValues.add(mark);
        this.log.error({ key, problem }, 'etcd-registry: backend key ignored');
      }
      return undefined;
    }
    return { ...(value as BackendSpec), address: address! };
  }

  #switchValue(key: string, text: string): boolean {
    try {
      const value = JSON.parse(text) as { enabled?: unknown };
      if (typeof value?.enabled === 'boolean') return value.enabled;
    } catch {
      // below
    }
    this.log.error({ key }, 'etcd-registry: switch value is not {"enabled": true|false}; taken as off');
    return false;
  }
}

/** The canonical `host:port` of an address (as the registry keys it), or null. */
export function canonicalOrNull(address: string): string | null {
  const parsed = parseAddress(address);
  return typeof parsed === 'string' ? null : formatAddress(parsed.host, parsed.port);
}

function canonical(address: string): string {
  return canonicalOrNull(address) ?? address;
}

function shortError(err: Error | undefined): string {
  if (err === undefined) return 'unknown error';
  return err.message.split('. Last error:')[0]!.slice(0, 200);
}
