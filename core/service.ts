import { type AddressInfo, createServer, type Server, Socket } from 'node:net';
import type { Logger } from 'pino';
import { formatAddress, parseListenAddress } from './address.js';
import { backendOptionsChecker } from './backend-option-values.js';
import { ORIGIN_API, ORIGIN_CONFIG, type ReconcileResult } from './backend-origin.js';
import { BackendRegistry } from './backend-registry.js';
import { BUILTIN_PROVIDER, someProvides, UPSTREAM_TLS } from './capabilities.js';
import type { Capacity } from './capacity.js';
import type { ServiceConfig } from './config/types.js';
import type { Runtime, Service as ServiceContract, ServiceState } from './contract.js';
import type { ServiceCounters } from './counters.js';
import type { DiscoverySource, DiscoverySourceOptions, DiscoveryStatus } from './discovery.js';
import { SwitchyardError } from './errors.js';
import { createServiceHooks, type ServerFactory, type ServiceHooks } from './hooks.js';
import { listenOn } from './listen.js';
import { NODELAY_INHERITED, noDelayOnListener } from './listener-nodelay.js';
import { LISTEN_BACKLOG } from './os-limits.js';
import { Pipeline } from './pipeline.js';
import type { ListeningHandle, ServicePlacement } from './service-placement.js';
import type { Backend, BackendSpec, CloseReason, ListenerInfo, Session } from './types.js';

/** One backend the service adds at start, with who it belongs to. */
export interface StartEntry {
  spec: BackendSpec;
  origin: string;
}

const NOTHING_YET: ReconcileResult = Object.freeze({
  added: [],
  removed: [],
  updated: [],
  conflicts: [],
  invalid: [],
}) as unknown as ReconcileResult;

/** The default listener: plain TCP, paused until a backend is connected, half-close kept, TCP_NODELAY. */
export const tcpServerFactory: ServerFactory = (_listener, onConnection) =>
  createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: !NODELAY_INHERITED }, onConnection);

/** The same without TCP_NODELAY (`tcp_nodelay: false`). */
const tcpServerFactoryNagle: ServerFactory = (_listener, onConnection) =>
  createServer({ allowHalfOpen: true, pauseOnConnect: true }, onConnection);

interface BoundListener {
  info: ListenerInfo;
  server: Server;
  /** A socket handed over by the cluster primary (scheduling: reuseport): its slot id. */
  slot?: number;
}

/** What node:net keeps on a server and reads in its `onconnection` (mirrored by `acceptHanded`). */
interface NetServerInternals {
  _connections: number;
  allowHalfOpen: boolean;
  pauseOnConnect: boolean;
  noDelay: boolean;
}

/**
 * One proxied service: its listeners, backend registry, plugins' hooks and session table.
 * Plugins receive it in `apply(service, options)`, typed as the `Service` interface
 * (core/contract.ts); the methods here that it lacks are the core's own.
 */
export class Service implements ServiceContract {
  readonly hooks: ServiceHooks;
  readonly backends: BackendRegistry;
  readonly name: string;
  readonly log: Logger;
  readonly #pipeline: Pipeline;
  readonly #listeners: BoundListener[] = [];
  #dropped = 0;
  /** Totals of this service's sessions held in other processes (see `setRemoteTotals`). */
  #remoteTotals: { counters: Readonly<ServiceCounters>; sessions: number } | undefined;
  readonly #provided = new Map<string, unknown>();
  readonly #placement: ServicePlacement;
  #state: ServiceState = 'new';
  readonly #sources = new Map<string, { status: DiscoveryStatus; pending: readonly BackendSpec[] | null }>();
  #startList: readonly StartEntry[] | undefined;

  constructor(
    readonly config: ServiceConfig,
    readonly runtime: Runtime,
    logger: Logger,
    /** The process-wide session budget, shared by every service. */
    capacity: Capacity,
    placement: ServicePlacement,
  ) {
    this.name = config.name;
    this.log = logger.child({ service: config.name });
    const log = this.log;
    this.hooks = createServiceHooks((hook, plugin, err) => {
      log.error({ err, hook, plugin }, 'a plugin hook threw; the other taps still ran');
    });
    this.#placement = placement;
    const closeDrained = placement.closeDrained;
    const checkOptions = backendOptionsChecker(config.plugins);
    this.backends = new BackendRegistry(
      this.hooks,
      config.drain_timeout,
      closeDrained !== undefined
        ? (b) => closeDrained(this.name, b)
        : (b) => this.#pipeline.closeBackendSessions(b, 'drained'),
      // Never dial a backend meant for TLS in plain text because no plugin speaks TLS.
      // The cluster primary applies no service plugin, so it asks the config instead.
      // Plugin-owned keys (proxy_protocol...) of specs that skipped the config's schema
      // (discovery sources, registry.add) are checked against the enabled plugins' schemas.
      (spec) =>
        spec.tls === true && !someProvides(config.plugins, UPSTREAM_TLS)
          ? `backend ${spec.address} has tls: true, but no plugin that dials TLS (e.g. ${BUILTIN_PROVIDER[UPSTREAM_TLS]}) is enabled in service ${this.name}`
          : checkOptions(spec),
    );
    this.#pipeline = new Pipeline(
      this,
      this.hooks,
      this.backends,
      {
        connectTimeout: config.connect_timeout,
        idleTimeout: config.idle_timeout,
        maxAttempts: config.retries + 1,
        noDelay: config.tcp_nodelay,
      },
      this.log,
      capacity,
      // The route step hands sessions to another service's pipeline (sni-router).
      (name) => {
        const pool = runtime.services.get(name);
        return pool instanceof Service ? pool.#pipeline : undefined;
      },
    );
  }

  /** Live sessions by id. Read-only view; close sessions with `closeSessions`. */
  get sessions(): ReadonlyMap<number, Session> {
    return this.#pipeline.sessions;
  }

  openBytes(): Map<Backend, { in: number; out: number }> {
    const open = new Map<Backend, { in: number; out: number }>();
    for (const session of this.#pipeline.sessions.values()) {
      const b = session.backend;
      if (b === null || session.connectedAt === 0 || session.pool !== this) continue;
      const o = open.get(b);
      if (o === undefined) open.set(b, { in: session.client.bytesRead, out: session.client.bytesWritten });
      else {
        o.in += session.client.bytesRead;
        o.out += session.client.bytesWritten;
      }
    }
    return open;
  }

  /** Counters since start (accepted, rejected, retries, ...), plus connections dropped at `max_connections`. */
  get counters(): Readonly<ServiceCounters> {
    if (this.#remoteTotals !== undefined) return { ...this.#remoteTotals.counters };
    return { ...this.#pipeline.counters, dropped: this.#dropped };
  }

  /**
   * Live sessions: `sessions.size`, except in a cluster primary, which holds none itself and
   * answers the sum its workers last reported (up to one report interval old).
   */
  get sessionCount(): number {
    return this.#remoteTotals?.sessions ?? this.#pipeline.sessions.size;
  }

  /**
   * For a service whose sessions live in other processes (a cluster primary's): their summed
   * counters and live sessions, which `counters` and `sessionCount` then answer.
   */
  setRemoteTotals(counters: Readonly<ServiceCounters>, sessions: number): void {
    this.#remoteTotals = { counters, sessions };
  }

  /** The bound address of each listener (useful with port 0). */
  addresses(): string[] {
    const out: string[] = [];
    for (const { info, server } of this.#listeners) {
      if (out[info.index] !== undefined) continue; // several sockets of one listener (reuseport)
      const a = server.address() as AddressInfo | null; // null: rr, the primary listens
      if (a !== null) out[info.index] = formatAddress(a.address, a.port);
    }
    return out.filter((a) => a !== undefined);
  }

  get state(): ServiceState {
    return this.#state;
  }

  /**
   * Sets `backend.status[source] = status` and fires `backendStatus` when it changed.
   * Returns whether it changed.
   */
  setBackendStatus(backend: Backend, source: string, status: string): boolean {
    if (backend.status[source] === status) return false;
    backend.status[source] = status;
    this.hooks.backendStatus.call(backend, source, status);
    return true;
  }

  /**
   * Withdraws `backend.status[source]` (a slow-start ramp ended) and fires `backendStatus`
   * with status `''`. Returns whether there was one.
   */
  clearBackendStatus(backend: Backend, source: string): boolean {
    if (backend.status[source] === undefined) return false;
    delete backend.status[source];
    this.hooks.backendStatus.call(backend, source, '');
    return true;
  }

  /** Shares a value with other plugins of this service (e.g. a health checker's API). Names are unique. */
  provide<T>(name: string, value: T): void {
    if (this.#provided.has(name))
      throw new SwitchyardError(
        'SWITCHYARD_E_ALREADY_PROVIDED',
        `"${name}" is provided already in service ${this.name}`,
      );
    this.#provided.set(name, value);
  }

  /** A value another plugin of this service provided; call from a start hook or later. */
  use<T>(name: string): T | undefined {
    return this.#provided.get(name) as T | undefined;
  }

  /**
   * Registers a discovery source: a plugin that hands the service's backends from a store
   * (DNS, etcd, ...). Call from `apply`. Its name is the `origin` of the backends it hands.
   * Throws when the name is taken or a second exclusive source is registered.
   */
  addDiscoverySource(name: string, options: DiscoverySourceOptions = {}): DiscoverySource {
    if (name === ORIGIN_CONFIG || name === ORIGIN_API || name === '')
      throw new Error(`"${name}" cannot name a discovery source (config and api are reserved)`);
    if (this.#sources.has(name))
      throw new Error(`discovery source "${name}" is registered already in service ${this.name}`);
    const exclusive = options.exclusive === true;
    const other = this.exclusiveSource;
    if (exclusive && other !== undefined)
      throw new Error(
        `service ${this.name} has an exclusive discovery source already (${other}); "${name}" cannot be one too`,
      );
    const entry: { status: DiscoveryStatus; pending: readonly BackendSpec[] | null } = {
      status: { name, exclusive, ok: true, detail: null, since: Date.now(), lastUpdate: null, listed: 0 },
      pending: null,
    };
    this.#sources.set(name, entry);
    const update = (specs: readonly BackendSpec[]): ReconcileResult => {
      entry.status = { ...entry.status, lastUpdate: Date.now(), listed: specs.length };
      if (this.#state === 'new') {
        entry.pending = specs.slice();
        return NOTHING_YET;
      }
      if (this.#state !== 'running') return NOTHING_YET;
      return this.backends.reconcile(name, specs);
    };
    return {
      name,
      exclusive,
      update,
      setStatus: (ok, detail) => {
        if (entry.status.ok === ok && entry.status.detail === (detail ?? null)) return;
        const since = entry.status.ok === ok ? entry.status.since : Date.now();
        entry.status = { ...entry.status, ok, detail: ok ? null : (detail ?? null), since };
      },
      get status() {
        return entry.status;
      },
    };
  }

  /** The discovery sources of this service and whether each can read its store. */
  get discoverySources(): readonly DiscoveryStatus[] {
    return [...this.#sources.values()].map((s) => s.status);
  }

  /** The exclusive discovery source's name, if the service has one. */
  get exclusiveSource(): string | undefined {
    for (const s of this.#sources.values()) if (s.status.exclusive) return s.status.name;
    return undefined;
  }

  /**
   * Replaces what the service adds at start — by default the config's backends (origin
   * `config`), or none with an exclusive source — by `entries` (a state file's list, a cluster
   * worker's first snapshot). Before start only. Discovery sources' lists are still applied after.
   */
  startWith(entries: readonly StartEntry[]): void {
    if (this.#state !== 'new') throw new Error(`service ${this.name} has started: too late for startWith`);
    this.#startList = entries.slice();
  }

  /**
   * Closes the sessions matching `filter` (all when omitted) at once. Returns how many.
   * `detail` becomes the sessions' `closeDetail` (who closed them, e.g. `health-check`).
   */
  closeSessions(
    reason: CloseReason = 'killed',
    filter?: (s: Session) => boolean,
    detail: string | null = null,
  ): number {
    let n = 0;
    for (const session of this.#pipeline.sessions.values()) {
      if (filter === undefined || filter(session)) {
        (session as Session & { close(r: CloseReason, d: string | null): void }).close(reason, detail);
        n++;
      }
    }
    return n;
  }

  /**
   * Runs plugins' `start`, adds configured backends, then binds every listener (unless its
   * placement says otherwise: a cluster primary keeps the registry, workers bind). A pool (no
   * `listen`) binds nothing.
   */
  async start(): Promise<void> {
    await this.prepare();
    await this.bind();
  }

  /**
   * The first half of `start`: plugins' `start`, then the configured backends. The runtime
   * prepares every service before any binds, so a pool a router sends sessions to is ready
   * before the router's first connection.
   */
  async prepare(): Promise<void> {
    if (this.#state !== 'new')
      throw new SwitchyardError('SWITCHYARD_E_ALREADY_STARTED', `service ${this.name} was started already`);
    this.#state = 'running';
    await this.hooks.start.promise();
    const exclusive = this.exclusiveSource !== undefined;
    const entries =
      this.#startList ??
      (exclusive ? [] : this.config.backends.map((spec) => ({ spec, origin: ORIGIN_CONFIG })));
    for (const { spec, origin } of entries) this.backends.add(spec, { origin });
    // The config file's list, for the next reload to apply only what the file changed.
    this.backends.remember(ORIGIN_CONFIG, exclusive ? [] : this.config.backends);
    for (const [name, source] of this.#sources) {
      if (source.pending === null) continue;
      const specs = source.pending;
      source.pending = null;
      const result = this.backends.reconcile(name, specs);
      reportReconcile(this, name, result);
    }
  }

  /** The second half of `start`: binds the listeners; a failure stops the service's plugins. */
  async bind(): Promise<void> {
    if (!this.#placement.binds) return;
    try {
      for (const [index, address] of this.config.listen.entries()) await this.#bind(address, index);
    } catch (err) {
      for (const { server } of this.#listeners) server.close();
      this.#listeners.length = 0;
      this.#state = 'stopped';
      // Plugins started above (timers, pools, checks) must not outlive a failed start.
      this.backends.dispose();
      await this.hooks.stop.promise().catch((stopErr: unknown) => {
        this.log.error({ err: stopErr }, 'a stop hook failed after a failed start');
      });
      throw err;
    }
  }

  /**
   * Graceful stop: stop accepting, let sessions finish for up to `drainTimeout` ms (default
   * the service's `drain_timeout`), close the rest, then run plugins' `stop`.
   */
  async stop(drainTimeout = this.config.drain_timeout): Promise<void> {
    if (this.#state === 'stopping' || this.#state === 'stopped') return;
    this.#state = 'stopping';
    this.#pipeline.stopping = true;
    // server.close() calls back only once every connection has ended, so wait for that last.
    const closed = Promise.all(
      this.#listeners.map(({ server }) => new Promise<void>((resolve) => server.close(() => resolve()))),
    );
    if (this.#pipeline.sessions.size > 0) {
      this.log.info({ sessions: this.#pipeline.sessions.size, drainTimeout }, 'draining sessions');
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, drainTimeout);
      });
      await Promise.race([this.#pipeline.whenEmpty(), timedOut]);
      clearTimeout(timer);
      const left = this.closeSessions('shutdown');
      if (left > 0) {
        this.log.warn({ closed: left }, 'drain timeout: closed remaining sessions');
        await this.#pipeline.whenEmpty();
      }
    }
    await closed;
    this.#pipeline.dispose();
    this.backends.dispose();
    await this.hooks.stop.promise();
    this.#state = 'stopped';
  }

  /** The listener's description, or why its address does not parse. */
  #listenerInfo(address: string, index: number): ListenerInfo | string {
    const parsed = parseListenAddress(address);
    return typeof parsed === 'string' ? parsed : { address, host: parsed.host, port: parsed.port, index };
  }

  async #bind(address: string, index: number): Promise<void> {
    const info = this.#listenerInfo(address, index);
    if (typeof info === 'string')
      throw new SwitchyardError('SWITCHYARD_E_LISTEN', `listener ${address}: ${info}`);
    if (this.#placement.handedConnections === true) {
      // The primary accepts and hands connections over (core/cluster/dispatcher.ts): the
      // listener's server never listens here; `acceptHanded` feeds it.
      this.#listeners.push({ info, server: this.#createServer(info) });
      return;
    }
    const source = this.#placement.listenSource;
    const handed = source?.take(this.name, index) ?? [];
    for (const { slot, handle } of handed) await this.#listen(info, handle, slot);
    if (handed.length > 0) return;
    if (source === undefined) {
      await this.#listen(info, { host: info.host, port: info.port, backlog: LISTEN_BACKLOG });
      return;
    }
    const port = source.port(this.name, index);
    const server = await this.#listen(info, {
      host: info.host,
      port,
      backlog: LISTEN_BACKLOG,
      reusePort: true,
    });
    source.bound(this.name, index, server);
  }

  /**
   * reuseport: takes on a listening socket the cluster primary handed over while running (a
   * dead worker's, until its replacement listens). Closed at once if the service is stopping.
   */
  adoptListener(index: number, slot: number, handle: ListeningHandle): void {
    const address = this.config.listen[index];
    const info = address === undefined ? undefined : this.#listenerInfo(address, index);
    if (this.#state !== 'running' || info === undefined || typeof info === 'string') {
      (handle as { close(): void }).close();
      return;
    }
    this.#listen(info, handle, slot).catch((err: unknown) =>
      this.log.error({ err, listener: address }, 'cannot accept on a handed-over socket'),
    );
  }

  /** reuseport: stops accepting on handed-over sockets (closes this process's copy only). */
  releaseListeners(slots: readonly number[]): void {
    for (let i = this.#listeners.length - 1; i >= 0; i--) {
      const listener = this.#listeners[i]!;
      if (listener.slot === undefined || !slots.includes(listener.slot)) continue;
      this.#listeners.splice(i, 1);
      listener.server.close();
    }
  }

  /**
   * rr: a connection the cluster primary accepted (its native handle, received over IPC), fed
   * to the listener's server as node:net's own `onconnection` would: the socket takes the
   * server's options (half-close, pause on connect, TCP_NODELAY) and counts in its
   * connections, so `max_connections` and a closing listener's wait work as for an accepted one.
   */
  acceptHanded(index: number, handle: ListeningHandle): void {
    const listener = this.#listeners.find((l) => l.info.index === index);
    if (listener === undefined) {
      (handle as { close(): void }).close();
      return;
    }
    const server = listener.server as Server & NetServerInternals;
    if (server.maxConnections > 0 && server._connections >= server.maxConnections) {
      (handle as { close(): void }).close();
      server.emit('drop');
      return;
    }
    const socket = new Socket({
      handle,
      allowHalfOpen: server.allowHalfOpen,
      pauseOnCreate: server.pauseOnConnect,
      readable: true,
      writable: true,
    } as ConstructorParameters<typeof Socket>[0]) as Socket & {
      _server: Server | null;
      server: Server | null;
    };
    if (server.noDelay) socket.setNoDelay(true);
    server._connections++;
    socket.server = server;
    socket._server = server; // node:net's Socket counts itself out of the server when destroyed
    server.emit('connection', socket);
  }

  /** The listener's server, built by the `listen` hook (plugins may wrap it, e.g. TLS). */
  #createServer(info: ListenerInfo): Server {
    const factory = this.hooks.listen.call(
      this.config.tcp_nodelay ? tcpServerFactory : tcpServerFactoryNagle,
      info,
    );
    const pipeline = this.#pipeline;
    const server = factory(info, (socket: Socket) => pipeline.accept(socket, info));
    const max = this.config.max_connections;
    if (max > 0) {
      server.maxConnections = max;
      server.on('drop', () => {
        this.#dropped++;
      });
    }
    return server;
  }

  /** Creates the listener's server and listens on `target`. */
  async #listen(
    info: ListenerInfo,
    target: ListeningHandle | { host: string; port: number; backlog: number; reusePort?: boolean },
    slot?: number,
  ): Promise<Server> {
    const server = this.#createServer(info);
    await listenOn(server, target, info.address);
    if (this.config.tcp_nodelay) noDelayOnListener(server);
    server.on('error', (err) => this.log.error({ err, listener: info.address }, 'listener error'));
    this.#listeners.push(slot === undefined ? { info, server } : { info, server, slot });
    return server;
  }
}

/** Logs what a source's first list could not do (conflicts, bad entries); later ones are the source's to log. */
function reportReconcile(service: Service, source: string, result: ReconcileResult): void {
  for (const c of result.conflicts)
    service.log.warn(
      { source, backend: c.address, owner: c.owner },
      'discovery source lists a backend another origin owns; the owner keeps it',
    );
  for (const i of result.invalid)
    service.log.error({ source, backend: i.address, error: i.error }, 'discovery source entry refused');
}
