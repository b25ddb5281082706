import type { Logger } from 'pino';
import { AsyncParallelHook, AsyncSeriesHook } from 'tapable';
import { Capacity } from './capacity.js';
import { CLUSTER, type ClusterBridge, type RuntimeRole } from './cluster/bridge.js';
import { placementFor } from './cluster/placement.js';
import type { Scheduling } from './cluster/scheduling.js';
import type { PluginUse, SwitchyardConfig } from './config/types.js';
import type { Runtime as RuntimeContract, RuntimeHooks } from './contract.js';
import { isSwitchyardError, SwitchyardError } from './errors.js';
import { checkLimits, distinctDestinations, LISTEN_BACKLOG, readOsLimits, workerCount } from './os-limits.js';
import type { ProcessPlugin, ServicePlugin } from './plugin.js';
import { DEFAULT_PLUGIN_TIMEOUT, formatMs, limitStartTaps, withTimeout } from './plugin-timeout.js';
import { Service } from './service.js';
import type { ListenSource } from './service-placement.js';

export type { RuntimeHooks };

/**
 * Everything one process runs: its services and process-scope plugins, plus a small registry
 * of named values plugins share without importing each other (`provide` / `use`). Plugins see
 * it as the `Runtime` interface (core/contract.ts).
 */
export class Runtime implements RuntimeContract {
  readonly hooks: RuntimeHooks = Object.freeze({
    start: new AsyncParallelHook<[]>([]),
    stop: new AsyncSeriesHook<[]>([]),
  });
  /** Services by name, in config order. */
  readonly services = new Map<string, Service>();
  /**
   * Primary only: names of the service plugins applied here (`runsIn: 'any'`). Backend
   * statuses under these sources are the primary's to set: snapshots carry them to workers,
   * and workers' reports of them are ignored (core/cluster/aggregate.ts).
   */
  readonly primaryStatusSources = new Set<string>();
  readonly #provided = new Map<string, unknown>();
  readonly #contributions = new Map<string, unknown[]>();
  #started = false;

  /** The process-wide session budget derived from the open files limit. */
  readonly capacity: Capacity;

  private constructor(
    readonly config: SwitchyardConfig,
    readonly log: Logger,
    capacity?: Capacity,
    /** `single` (default), or the part this process plays in a cluster (docs/multi-process.md). */
    readonly role: RuntimeRole = 'single',
  ) {
    this.capacity = capacity ?? Capacity.fromFdLimit(log);
  }

  /**
   * Builds services and applies every plugin (service-scope first, then process-scope).
   * In a cluster (`role`), the primary applies only service-scope plugins marked
   * `runsIn: 'any'` (it proxies nothing) and workers skip process plugins marked `runsIn: 'primary'`; `cluster` is provided as
   * `runtime.use('cluster')` before any plugin is applied.
   */
  static async create(
    config: SwitchyardConfig,
    log: Logger,
    options: {
      capacity?: Capacity;
      role?: RuntimeRole;
      cluster?: ClusterBridge;
      /** A cluster worker: how connections reach it (core/cluster/scheduling.ts). */
      scheduling?: Scheduling;
      /** A cluster worker with `scheduling: reuseport`: where its listening sockets come from. */
      listenSource?: ListenSource;
    } = {},
  ): Promise<Runtime> {
    const role = options.role ?? 'single';
    const runtime = new Runtime(config, log, options.capacity, role);
    if (options.cluster) runtime.provide<ClusterBridge>(CLUSTER, options.cluster);
    if (role !== 'primary') runtime.#warnAboutLimits();
    const placement = placementFor(role, () => runtime.use<ClusterBridge>(CLUSTER), {
      ...(options.scheduling && { scheduling: options.scheduling }),
      ...(options.listenSource && { listenSource: options.listenSource }),
    });
    for (const sc of config.services)
      runtime.services.set(sc.name, new Service(sc, runtime, log, runtime.capacity, placement));
    for (const service of runtime.services.values()) {
      for (const use of service.config.plugins) {
        const plugin = use.plugin as ServicePlugin;
        if (role === 'primary') {
          if (plugin.runsIn !== 'any') continue;
          runtime.primaryStatusSources.add(plugin.name);
        }
        await applyPlugin(use, config, (p) => (p as ServicePlugin).apply(service, use.options));
      }
    }
    for (const use of config.plugins) {
      if (role === 'worker' && (use.plugin as ProcessPlugin).runsIn === 'primary') continue;
      await applyPlugin(use, config, (p) => (p as ProcessPlugin).apply(runtime, use.options));
    }
    const overbooked = runtime.capacity.listeners.check();
    if (overbooked !== undefined) throw new SwitchyardError('SWITCHYARD_E_LISTENER_BUDGET', overbooked);
    // Start hooks are tapped by now; bound every plugin's part of the start.
    const ms = config.plugin_timeout ?? DEFAULT_PLUGIN_TIMEOUT;
    limitStartTaps(runtime.hooks.start, ms, 'process start hook');
    for (const service of runtime.services.values())
      limitStartTaps(service.hooks.start, ms, `start hook of service "${service.name}"`);
    return runtime;
  }

  /** Warns at start when the open files limit or a kernel setting (core/os-limits.ts) cannot meet the configuration. */
  #warnAboutLimits(): void {
    const { limit } = this.capacity;
    if (Number.isFinite(limit)) this.#warnAboutOpenFiles(limit);
    // Workers share the kernel's accept queue settings and source ports, so the budget is the cluster's.
    const workers = this.role === 'worker' ? workerCount(this.config.workers) : 1;
    const messages = checkLimits({
      ...readOsLimits(),
      backlog: LISTEN_BACKLOG,
      sessionBudget: limit * workers,
      services: this.config.services.map((s) => ({
        name: s.name,
        destinations: distinctDestinations(s.backends),
        // A pool (no listener) takes what routers send it: bounded by the session budget only.
        maxSessions:
          s.max_connections > 0 && s.listen.length > 0
            ? s.max_connections * s.listen.length * workers
            : Number.POSITIVE_INFINITY,
      })),
    });
    for (const message of messages) this.log.warn(message);
  }

  #warnAboutOpenFiles(limit: number): void {
    const configured = this.config.services.reduce(
      (sum, s) =>
        // A pool accepts nothing itself: its sessions are counted where they were accepted.
        s.listen.length === 0
          ? sum
          : sum + (s.max_connections > 0 ? s.max_connections * s.listen.length : Number.POSITIVE_INFINITY),
      0,
    );
    if (Number.isFinite(configured) && configured > limit) {
      this.log.warn(
        { maxConnections: configured, sessionLimit: limit },
        'max_connections is above what the open files limit allows; raise `ulimit -n` (LimitNOFILE) or run more workers',
      );
    }
    if (limit < 1000) {
      this.log.warn({ sessionLimit: limit }, 'open files limit is low: raise `ulimit -n` (LimitNOFILE)');
    }
  }

  /** The first service: the default for APIs that take an optional service name. */
  get defaultService(): Service {
    return this.services.values().next().value as Service;
  }

  /** Finds a service by name; undefined name means the default one. */
  service(name?: string): Service | undefined {
    return name === undefined ? this.defaultService : this.services.get(name);
  }

  /** Shares a value under a name (e.g. the admin API's route registry). Names are unique. */
  provide<T>(name: string, value: T): void {
    if (this.#provided.has(name))
      throw new SwitchyardError('SWITCHYARD_E_ALREADY_PROVIDED', `"${name}" is provided already`);
    this.#provided.set(name, value);
  }

  /** A value provided by another plugin, or undefined. Call from a start hook or later, when every plugin has been applied. */
  use<T>(name: string): T | undefined {
    return this.#provided.get(name) as T | undefined;
  }

  /**
   * Adds a contribution of some kind (e.g. `admin.routes`): many plugins contribute, one
   * collects with `contributions(kind)` at start. Plugin order in the config does not matter.
   */
  contribute<T>(kind: string, value: T): void {
    let list = this.#contributions.get(kind);
    if (!list) {
      list = [];
      this.#contributions.set(kind, list);
    }
    list.push(value);
  }

  contributions<T>(kind: string): readonly T[] {
    return (this.#contributions.get(kind) ?? []) as T[];
  }

  async start(): Promise<void> {
    if (this.#started) throw new SwitchyardError('SWITCHYARD_E_ALREADY_STARTED', 'runtime started already');
    this.#started = true;
    await this.hooks.start.promise();
    const started: Service[] = [];
    try {
      // Every service's plugins and backends first, then the listeners: a router's first
      // session may go to any pool (sni-router), which must have its backends by then.
      for (const service of this.services.values()) {
        await service.prepare();
        started.push(service);
      }
      for (const service of started) await service.bind();
    } catch (err) {
      await Promise.all(started.map((s) => s.stop(0)));
      await this.hooks.stop.promise();
      throw err;
    }
  }

  /** Graceful stop of every service in parallel, then process plugins. */
  async stop(drainTimeout?: number): Promise<void> {
    await Promise.all([...this.services.values()].map((s) => s.stop(drainTimeout)));
    await this.hooks.stop.promise();
  }
}

/**
 * One plugin's `apply`, bounded by plugin_timeout as its import and its start are: an `apply`
 * that never settles fails the start naming the plugin instead of leaving the process half
 * started and silent. (A synchronous loop cannot be bounded from here; nothing runs meanwhile.)
 */
async function applyPlugin(
  use: PluginUse,
  config: SwitchyardConfig,
  apply: (p: PluginUse['plugin']) => void | Promise<void>,
): Promise<void> {
  const ms = config.plugin_timeout ?? DEFAULT_PLUGIN_TIMEOUT;
  try {
    await withTimeout(
      Promise.resolve().then(() => apply(use.plugin)),
      ms,
      () =>
        new SwitchyardError(
          'SWITCHYARD_E_PLUGIN_TIMEOUT',
          `plugin "${use.name}" did not finish applying within ${formatMs(ms)}; raise plugin_timeout if it needs longer`,
        ),
    );
  } catch (err) {
    if (isSwitchyardError(err, 'SWITCHYARD_E_PLUGIN_TIMEOUT')) throw err;
    throw new SwitchyardError(
      'SWITCHYARD_E_PLUGIN_APPLY',
      `plugin "${use.name}" failed to apply: ${(err as Error).message}`,
      { cause: err },
    );
  }
}
