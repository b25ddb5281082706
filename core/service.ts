import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { formatAddress, parseListenAddress } from './address.js';
import { BackendRegistry } from './backend-registry.js';
import { CLOSE_BACKEND, CLUSTER, type ClusterBridge } from './cluster/bridge.js';
import type { ServiceConfig } from './config/load.js';
import { createServiceHooks, type ServerFactory, type ServiceHooks } from './hooks.js';
import { LISTEN_BACKLOG } from './os-limits.js';
import { Pipeline, type PipelineCounters } from './pipeline.js';
import { someProvides, TLS_UPSTREAM, UPSTREAM_TLS } from './plugin.js';
import type { Runtime } from './runtime.js';
import type { Backend, CloseReason, ListenerInfo, ServiceRef, Session } from './types.js';

/** The default listener: plain TCP, paused until a backend is connected, half-close kept. */
export const tcpServerFactory: ServerFactory = (_listener, onConnection) =>
  createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, onConnection);

/** The same without TCP_NODELAY (`tcp_nodelay: false`). */
const tcpServerFactoryNagle: ServerFactory = (_listener, onConnection) =>
  createServer({ allowHalfOpen: true, pauseOnConnect: true }, onConnection);

/**
 * Cluster primary: a drain it timed (admin `remove`/`drain` with a timeout) closes the
 * backend's sessions where they live, in the workers.
 */
function closeInWorkers(runtime: Runtime, service: string, backend: Backend): void {
  const payload = { service, address: backend.address };
  // After the registry snapshot of the same change (queued as a microtask): workers must see
  // the backend removed or drained first, or they take the close for a stale one.
  setImmediate(() => {
    void runtime.use<ClusterBridge>(CLUSTER)?.request(CLOSE_BACKEND, payload, { sticky: false });
  });
}

interface BoundListener {
  info: ListenerInfo;
  server: Server;
}

/**
 * One proxied service: its listeners, backend registry, plugins' hooks and session table.
 * Plugins receive it in `apply(service, options)`.
 */
export class Service implements ServiceRef {
  readonly hooks: ServiceHooks = createServiceHooks();
  readonly backends: BackendRegistry;
  readonly name: string;
  readonly log: Logger;
  readonly #pipeline: Pipeline;
  readonly #listeners: BoundListener[] = [];
  #dropped = 0;
  #saturated = false;
  /** Cluster primary: the sums workers last reported (docs/multi-process.md). */
  #workerTotals: { counters: Readonly<PipelineCounters> & { dropped: number }; sessions: number } | undefined;
  readonly #provided = new Map<string, unknown>();
  #state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';

  constructor(
    readonly config: ServiceConfig,
    readonly runtime: Runtime,
    logger: Logger,
  ) {
    this.name = config.name;
    this.log = logger.child({ service: config.name });
    this.backends = new BackendRegistry(
      this.hooks,
      config.drain_timeout,
      (b) =>
        runtime.role === 'primary'
          ? closeInWorkers(runtime, this.name, b)
          : this.#pipeline.closeBackendSessions(b, 'drained'),
      // Never dial a backend meant for TLS in plain text because no plugin speaks TLS.
      // The cluster primary applies no service plugin, so it asks the config instead.
      (spec) =>
        spec.tls === true && !someProvides(config.plugins, UPSTREAM_TLS)
          ? `backend ${spec.address} has tls: true, but no plugin that dials TLS (e.g. ${TLS_UPSTREAM}) is enabled in service ${this.name}`
          : undefined,
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
      runtime.capacity,
    );
  }

  /** Live sessions by id. Read-only view; close sessions with `closeSessions`. */
  get sessions(): ReadonlyMap<number, Session> {
    return this.#pipeline.sessions;
  }

  /** Counters since start (accepted, rejected, retries, ...), plus connections dropped at `max_connections`. */
  get counters(): Readonly<PipelineCounters> & { dropped: number } {
    if (this.#workerTotals !== undefined) return { ...this.#workerTotals.counters };
    return { ...this.#pipeline.counters, dropped: this.#dropped };
  }

  /**
   * Live sessions: `sessions.size`, except in a cluster primary, which holds none itself and
   * answers the sum its workers last reported (up to one report interval old).
   */
  get sessionCount(): number {
    return this.#workerTotals?.sessions ?? this.#pipeline.sessions.size;
  }

  /** The cluster primary records its workers' summed counters here; `counters` then answers them. */
  setWorkerTotals(counters: Readonly<PipelineCounters> & { dropped: number }, sessions: number): void {
    this.#workerTotals = { counters, sessions };
  }

  /** The bound address of each listener (useful with port 0). */
  addresses(): string[] {
    return this.#listeners.map(({ server }) => {
      const a = server.address() as AddressInfo;
      return formatAddress(a.address, a.port);
    });
  }

  get state(): 'new' | 'running' | 'stopping' | 'stopped' {
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
    if (this.#provided.has(name)) throw new Error(`"${name}" is provided already in service ${this.name}`);
    this.#provided.set(name, value);
  }

  /** A value another plugin of this service provided; call from a start hook or later. */
  use<T>(name: string): T | undefined {
    return this.#provided.get(name) as T | undefined;
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
   * Runs plugins' `start`, adds configured backends, then binds every listener (except in a
   * cluster primary: it keeps the registry, workers bind).
   */
  async start(): Promise<void> {
    if (this.#state !== 'new') throw new Error(`service ${this.name} was started already`);
    this.#state = 'running';
    await this.hooks.start.promise();
    for (const spec of this.config.backends) this.backends.add(spec);
    if (this.runtime.role === 'primary') return;
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

  /**
   * `server.maxConnections` of each listener: `max_connections`, and in a cluster worker also
   * its session budget — a full worker then declines in node:cluster's child.js and the
   * round-robin primary offers the connection to another worker instead of one that would
   * accept-and-close it. While every worker is full (`setClusterSaturated`), the budget is
   * lifted from the listeners: the primary would otherwise bounce the connection between full
   * workers; the core's budget check refuses it at accept instead (counted as `overloaded`).
   */
  #listenerLimit(): number {
    const budget =
      this.runtime.role === 'worker' && !this.#saturated && Number.isFinite(this.runtime.capacity.limit)
        ? this.runtime.capacity.limit
        : 0;
    return this.config.max_connections > 0 && budget > 0
      ? Math.min(this.config.max_connections, budget)
      : this.config.max_connections || budget;
  }

  /** Cluster worker: the primary says whether every worker is at its session budget. */
  setClusterSaturated(saturated: boolean): void {
    if (this.#saturated === saturated) return;
    this.#saturated = saturated;
    const max = this.#listenerLimit();
    for (const { server } of this.#listeners)
      server.maxConnections = max > 0 ? max : (undefined as unknown as number);
  }

  async #bind(address: string, index: number): Promise<void> {
    const parsed = parseListenAddress(address);
    if (typeof parsed === 'string') throw new Error(`listener ${address}: ${parsed}`);
    const info: ListenerInfo = { address, host: parsed.host, port: parsed.port, index };
    const factory = this.hooks.listen.call(
      this.config.tcp_nodelay ? tcpServerFactory : tcpServerFactoryNagle,
      info,
    );
    const pipeline = this.#pipeline;
    const server = factory(info, (socket: Socket) => pipeline.accept(socket, info));
    const max = this.#listenerLimit();
    if (max > 0) {
      server.maxConnections = max;
      server.on('drop', () => {
        this.#dropped++;
      });
    }
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        reject(new Error(`cannot listen on ${address}: ${err.code ?? err.message}`));
      };
      server.once('error', onError);
      server.listen({ host: parsed.host, port: parsed.port, backlog: LISTEN_BACKLOG }, () => {
        server.removeListener('error', onError);
        resolve();
      });
    });
    server.on('error', (err) => this.log.error({ err, listener: address }, 'listener error'));
    this.#listeners.push({ info, server });
  }
}
