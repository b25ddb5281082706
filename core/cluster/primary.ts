import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { ConfigError, formatIssue } from '../config/errors.js';
import { loadConfigInThread, toPortable } from '../config/load-thread.js';
import type { SwitchyardConfig } from '../config/types.js';
import { DEFAULT_STOP_GRACE } from '../hard-stop.js';
import { LOG_TO_PRIMARY_ENV } from '../logger.js';
import { withMallocTuning } from '../malloc-tuning.js';
import { workerCount } from '../os-limits.js';
import { reconcileConfigBackends } from '../reload-backends.js';
import { primaryPluginChangesNeedingRestart, reconfigurePlugins } from '../reload-plugins.js';
import { Runtime } from '../runtime.js';
import { StatsAggregator } from './aggregate.js';
import type { WorkerInfo } from './bridge.js';
import { Dispatcher } from './dispatcher.js';
import { ListenerSlots } from './listener-slots.js';
import { isMessage, type ListenHandle, STATS_INTERVAL, type ToPrimary, type ToWorker } from './messages.js';
import { PrimaryFdWatch } from './primary-fd-watch.js';
import { PrimaryRequests } from './requests.js';
import { RespawnBackoff } from './respawn-backoff.js';
import { resolveScheduling, SCHEDULING_ENV, type Scheduling } from './scheduling.js';
import { takeSnapshot } from './snapshot.js';
import { workerStartBound, workersDidNotListen } from './start-bound.js';
import { forwardLines } from './worker-logs.js';

/** Added to the longest drain_timeout before workers that do not exit are killed. */

interface Member {
  worker: Worker;
  generation: number;
  /** The config its generation was started with. */
  config: SwitchyardConfig;
  /** Plugins applied: it takes snapshots and requests. */
  ready: boolean;
  listening: boolean;
  addresses: Record<string, string[]>;
  /** Asked to stop (reload, shutdown): its exit is expected, not replaced. */
  retiring: boolean;
  /** Forked to replace a crashed worker (rather than as part of a generation someone waits for). */
  replacement: boolean;
}

/**
 * The cluster primary: the control plane. Holds the authoritative backend registry (in a
 * Runtime of role `primary`, where the admin API, metrics and dashboard run), forks and
 * supervises workers, broadcasts registry snapshots, sums workers' stats, and runs graceful
 * stop (SIGTERM/SIGINT) and zero-downtime reload (SIGHUP). See docs/multi-process.md.
 */
export class ClusterPrimary {
  readonly #members = new Map<number, Member>();
  readonly #requests = new PrimaryRequests(
    () =>
      // Retiring workers too: while they drain, their sessions are still the operator's to list,
      // force-disconnect and close at a drain timeout.
      [...this.#members.values()].filter((m) => m.ready && m.worker.isConnected()).map((m) => m.worker),
    () => this.#workerInfos(),
  );
  readonly #backoff = new RespawnBackoff();
  #runtime!: Runtime;
  #aggregator!: StatsAggregator;
  #generation = 0;
  #version = 0;
  #snapshotQueued = false;
  #stopping = false;
  #reloading = false;
  #statsTimer: NodeJS.Timeout | undefined;
  readonly #fdWatch: PrimaryFdWatch;
  /** Resolved from the config's `scheduling` at start (a reload cannot change it). */
  #scheduling: Scheduling = 'rr';
  /** reuseport: the listening sockets and which worker accepts on each. */
  #slots: ListenerSlots | undefined;
  /** rr: the primary's listeners and the hand-off to workers. */
  #dispatcher: Dispatcher | undefined;

  constructor(
    private config: SwitchyardConfig,
    private workers: number,
    private readonly log: Logger,
    /** Pretty logs: workers' JSON lines go through here (their stdout is piped to the primary). */
    private readonly workerLines?: (line: string) => void,
  ) {
    this.#fdWatch = new PrimaryFdWatch(log);
  }

  get runtime(): Runtime {
    return this.#runtime;
  }

  /** How connections reach the workers: the config's `scheduling`, `auto` resolved. */
  get scheduling(): Scheduling {
    return this.#scheduling;
  }

  /** Starts the control plane and the first generation; resolves once every worker listens. */
  async start(): Promise<Record<string, string[]>> {
    const resolved = resolveScheduling(this.config.scheduling);
    if ('error' in resolved) throw new Error(resolved.error);
    this.#scheduling = resolved.scheduling;
    if (resolved.note !== undefined) this.log.info(resolved.note);
    // Service listeners never go through node:cluster's rr: reuseport listens are exclusive and
    // rr is Switchyard's dispatcher. Any other listen in a worker (a plugin's own server) is
    // shared without the primary accepting.
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    let listening: Record<string, string[]> | undefined;
    if (this.#scheduling === 'rr') {
      this.#dispatcher = new Dispatcher(this.log);
      listening = await this.#dispatcher.listen(this.config).catch((err: unknown) => {
        this.#dispatcher?.close();
        throw err;
      });
    }
    if (this.#scheduling === 'reuseport') {
      this.#slots = new ListenerSlots(
        (member, message, handle) => this.#send(member as Member, message, handle),
        () => this.#members.values(),
        () => this.#generation,
        this.log,
      );
      this.#slots.useConfig(this.config);
      await this.#slots.checkFree(this.config);
    }
    this.#runtime = await Runtime.create(this.config, this.log, { role: 'primary', cluster: this.#requests });
    const dispatcher = this.#dispatcher;
    this.#aggregator = new StatsAggregator(this.#runtime, (service) => dispatcher?.refused(service) ?? 0);
    for (const service of this.#runtime.services.values()) {
      const changed = () => this.#queueSnapshot();
      service.hooks.backendAdded.tap('cluster', changed);
      service.hooks.backendRemoved.tap('cluster', changed);
      service.hooks.backendChanged.tap('cluster', changed);
      // Health and other control-plane statuses travel with the snapshot; aggregated ones do not.
      const owned = this.#runtime.primaryStatusSources;
      service.hooks.backendStatus.tap('cluster', (_backend, source) => {
        if (owned.has(source)) changed();
      });
    }
    await this.#runtime.start();
    this.#statsTimer = setInterval(() => this.#statsRound(), STATS_INTERVAL);
    this.#statsTimer.unref();
    // Only rr queues client descriptors in the primary.
    if (this.#scheduling === 'rr') this.#fdWatch.start();
    const generation = this.#forkGeneration(this.workers);
    try {
      await this.#whenListening(generation);
    } catch (err) {
      await this.stop(0);
      throw err;
    }
    return listening ?? generation[0]?.addresses ?? {};
  }

  /** Pids of live workers, current generation first. */
  pids(): number[] {
    return [...this.#members.values()]
      .sort((a, b) => b.generation - a.generation)
      .map((m) => m.worker.process.pid ?? 0);
  }

  /**
   * Graceful stop: every worker stops accepting and drains (drain_timeout, unless `drainTimeout`
   * overrides it); workers still alive after the longest drain plus a grace period are killed.
   */
  async stop(drainTimeout?: number): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#statsTimer);
    this.#fdWatch.stop();
    // First, so each socket closes when its worker stops accepting: new connections are refused
    // rather than queued on a socket no one accepts on.
    this.#slots?.closeAll();
    this.#dispatcher?.close();
    const members = [...this.#members.values()];
    for (const m of members) this.#retire(m);
    const longest = drainTimeout ?? Math.max(0, ...this.config.services.map((s) => s.drain_timeout));
    await this.#whenExited(members, longest + (this.config.stop_grace ?? DEFAULT_STOP_GRACE));
    await this.#runtime?.stop(0);
  }

  /**
   * SIGHUP: re-reads and validates the config. Invalid: every issue is logged and nothing
   * changes. Valid: backends the config file added, removed or re-weighted are applied to the
   * registry (admin changes to other backends stay), a new generation of workers starts from
   * the new file, and once all of them listen the old generation drains and exits.
   */
  async reload(): Promise<boolean> {
    if (this.#stopping) return false;
    if (this.#reloading) {
      this.log.warn('reload already in progress; SIGHUP ignored');
      return false;
    }
    this.#reloading = true;
    try {
      let next: SwitchyardConfig;
      try {
        next = await loadConfigInThread(this.config.file);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        for (const issue of err.issues) this.log.error({ issue: formatIssue(issue) }, 'invalid config');
        this.log.error(
          { file: this.config.file, problems: err.issues.length },
          'reload rejected: the config is invalid; keeping the running workers and config',
        );
        return false;
      }
      const blocked = primaryPluginChangesNeedingRestart(this.config, next);
      if (blocked.length > 0) {
        this.log.error(
          { changes: blocked },
          'reload rejected: these changes need a restart (the primary runs these plugins); keeping the running workers and config',
        );
        return false;
      }
      if (next.scheduling !== this.config.scheduling)
        this.log.warn('scheduling changes take effect at restart only');
      const workers = workerCount(next.workers);
      const old = [...this.#members.values()].filter((m) => !m.retiring);
      const previous = this.config;
      try {
        await this.#slots?.checkFree(next);
        await this.#dispatcher?.listen(next);
      } catch (err) {
        this.log.error(
          { err },
          'reload rejected: a new listen address is in use; keeping the running workers and config',
        );
        return false;
      }
      reconcileConfigBackends(this.#runtime, previous, next, this.log);
      this.config = next;
      this.workers = workers;
      this.#slots?.useConfig(next);
      const generation = this.#forkGeneration(workers);
      try {
        await this.#whenListening(generation);
      } catch (err) {
        this.log.error(
          { err: (err as Error).message },
          'reload failed: the new workers did not start; keeping the old ones',
        );
        this.#generation--;
        // The old workers keep serving the old file's backends, not the new one's.
        reconcileConfigBackends(this.#runtime, next, previous, this.log);
        this.config = previous;
        this.workers = old.length;
        this.#slots?.useConfig(previous);
        this.#dispatcher?.closeUnlisted(previous);
        for (const m of generation) this.#retire(m, true);
        return false;
      }
      for (const m of old) this.#retire(m);
      this.#dispatcher?.closeUnlisted(next);
      const closed = this.#slots?.retireUnclaimed() ?? 0;
      if (closed > 0)
        this.log.warn(
          { sockets: closed },
          'listening sockets no new worker took are closed as the old workers stop (fewer workers or listeners)',
        );
      // Only once the new generation serves: a failed reload leaves the primary's plugins as they were.
      reconfigurePlugins(this.#runtime, previous, next, this.log);
      this.log.info(
        { generation: this.#generation, workers, retiring: old.length },
        'reloaded: new workers listening, old workers draining',
      );
      return true;
    } finally {
      this.#reloading = false;
    }
  }

  #forkGeneration(n: number): Member[] {
    this.#generation++;
    // Per generation, so a reload can change it. V8 reads the heap flags at start only.
    const semi = this.config.worker_semi_space;
    const inherited = process.execArgv.filter((a) => !a.startsWith('--max-semi-space-size'));
    cluster.setupPrimary({
      execArgv: semi === undefined ? process.execArgv : [...inherited, `--max-semi-space-size=${semi}`],
      silent: this.workerLines !== undefined,
    });
    return Array.from({ length: n }, () => this.#fork(this.#generation, false));
  }

  #fork(generation: number, replacement: boolean): Member {
    const worker = cluster.fork({
      // glibc keeps freed socket buffers instead of faulting them back in (core/malloc-tuning.ts).
      ...pick(withMallocTuning(process.env), 'GLIBC_TUNABLES'),
      SWITCHYARD_GENERATION: String(generation),
      [SCHEDULING_ENV]: this.#scheduling,
      ...(this.workerLines !== undefined && { [LOG_TO_PRIMARY_ENV]: '1' }),
    });
    if (this.workerLines !== undefined) {
      forwardLines(worker.process.stdout, this.workerLines);
      forwardLines(worker.process.stderr, this.workerLines);
    }
    const member: Member = {
      worker,
      generation,
      config: this.config,
      ready: false,
      listening: false,
      addresses: {},
      retiring: false,
      replacement,
    };
    this.#members.set(worker.id, member);
    worker.on('message', (raw: unknown, handle: unknown) => this.#onMessage(member, raw, handle));
    worker.on('exit', (code, signal) => this.#onExit(member, code, signal));
    // An IPC write to a worker that just died; 'exit' handles it.
    worker.on('error', (err) => this.log.debug({ err, worker: worker.id }, 'worker channel error'));
    return member;
  }

  #onMessage(member: Member, raw: unknown, handle: unknown): void {
    if (!isMessage<ToPrimary>(raw)) return;
    switch (raw.t) {
      case 'config?':
        // Workers take the primary's config rather than reading the file: a generation runs
        // the config its primary validated (the file may have changed since), and a worker
        // needs no config thread, ajv or YAML parser of its own (./worker-config.ts).
        this.#send(member, { t: 'config', config: toPortable(member.config) });
        break;
      case 'hello':
        member.ready = true;
        this.#send(member, { t: 'snapshot', snapshot: takeSnapshot(this.#runtime, this.#version) });
        this.#requests.replay(member.worker);
        this.#slots?.plan(member, member.config);
        break;
      case 'socket':
        if (this.#slots === undefined || handle === undefined || handle === null) break;
        this.#slots.bound(member, member.config, raw.service, raw.index, raw.port, handle as ListenHandle);
        break;
      case 'listening':
        member.listening = true;
        this.#slots?.listening(member);
        if (this.#dispatcher !== undefined && !member.retiring) {
          const worker = member.worker;
          const dispatcher = this.#dispatcher;
          dispatcher.add(worker.id, raw.sessionLimit, (message, handle, callback) => {
            if (!worker.isConnected()) callback(new Error('worker gone'));
            else worker.send(message, handle as never, {}, callback);
          });
          // The channel closes before 'exit' is reported: stop sending at once.
          worker.once('disconnect', () => dispatcher.gone(worker.id));
        }
        member.addresses = raw.addresses;
        member.worker.emit('switchyard:listening');
        if (member.replacement) this.log.info({ worker: member.worker.id }, 'replacement worker listening');
        break;
      case 'stats':
        this.#aggregator.report(member.worker.id, raw.stats);
        this.#dispatcher?.report(
          member.worker.id,
          raw.stats.capacity.active,
          raw.stats.capacity.limit,
          raw.stats.capacity.handed ?? 0,
        );
        break;
      case 'reply':
        this.#requests.reply(member.worker.id, raw.id, raw.value);
        break;
      case 'failed':
        member.worker.emit('switchyard:failed', Object.assign(new Error(raw.message), { code: raw.code }));
        break;
    }
  }

  #onExit(member: Member, code: number | null, signal: string | null): void {
    const id = member.worker.id;
    this.#members.delete(id);
    this.#slots?.left(member);
    this.#dispatcher?.gone(id);
    this.#aggregator.retire(id);
    this.#aggregator.apply();
    this.#requests.workerGone(id);
    if (member.retiring || this.#stopping) {
      this.log.info({ worker: id, code, signal }, 'worker exited');
      return;
    }
    const current = member.generation === this.#generation;
    // `pid` is the primary's own (every line has it): the worker's is `workerPid`.
    this.log.error({ worker: id, workerPid: member.worker.process.pid, code, signal }, 'worker died');
    // A worker of a generation still starting is the starter's failure to handle, not a crash.
    if (!current || !(member.listening || member.replacement)) return;
    const delay = this.#backoff.next();
    this.log.warn({ delay }, 'forking a replacement worker');
    setTimeout(() => {
      if (!this.#stopping && member.generation === this.#generation)
        this.#watchReplacement(this.#fork(member.generation, true));
    }, delay).unref();
  }

  #workerInfos(): WorkerInfo[] {
    const out: WorkerInfo[] = [];
    for (const m of this.#members.values()) {
      const report = this.#aggregator.reportOf(m.worker.id);
      if (report === undefined) continue; // no report yet
      const c = report.capacity;
      out.push({
        id: m.worker.id,
        pid: m.worker.process.pid ?? 0,
        generation: m.generation,
        retiring: m.retiring,
        sessions: c.active,
        sessionLimit: c.limit,
        ...report.process,
      });
    }
    return out.sort((a, b) => a.id - b.id);
  }

  /** Sums the reports into the registry, and tells each worker what the others reported. */
  #statsRound(): void {
    this.#aggregator.apply();
    const views = this.#aggregator.peerViews();
    for (const m of this.#members.values())
      if (m.ready) this.#send(m, { t: 'peers', services: views.get(m.worker.id) ?? {} });
  }

  #queueSnapshot(): void {
    if (this.#snapshotQueued) return;
    this.#snapshotQueued = true;
    queueMicrotask(() => {
      this.#snapshotQueued = false;
      const snapshot = takeSnapshot(this.#runtime, ++this.#version);
      for (const m of this.#members.values()) if (m.ready) this.#send(m, { t: 'snapshot', snapshot });
    });
  }

  #send(member: Member, message: ToWorker, handle?: ListenHandle): void {
    if (!member.worker.isConnected()) return;
    try {
      member.worker.send(message, handle as never);
    } catch (err) {
      this.log.debug({ err, worker: member.worker.id }, 'cannot message a worker');
    }
  }

  /** Asks a worker to drain and exit; `now` kills it instead (a generation that failed to start). */
  #retire(member: Member, now = false): void {
    if (member.retiring && !now) return;
    member.retiring = true;
    this.#dispatcher?.remove(member.worker.id);
    if (now || !member.worker.isConnected()) member.worker.process.kill('SIGKILL');
    else this.#send(member, { t: 'stop' });
  }

  /**
   * A replacement is waited for like a generation (nobody else does): one that fails to start
   * gets its reason logged (the worker leaves that to the primary), one that does not listen
   * within the bound is killed. Either exit forks the next replacement, with the back-off.
   */
  #watchReplacement(member: Member): void {
    this.#whenListening([member]).catch((err: Error & { code?: unknown }) => {
      // An exit is logged by #onExit ('worker died'); a retired one was meant to stop.
      if (member.retiring || this.#stopping || member.worker.isDead()) return;
      this.log.error(
        { worker: member.worker.id, workerPid: member.worker.process.pid, code: err.code, err: err.message },
        'replacement worker did not start',
      );
      member.worker.process.kill('SIGKILL');
    });
  }

  /**
   * Resolves when every member listens; rejects when one fails, exits or takes longer than
   * plugin_timeout lets a worker take (./start-bound.ts).
   */
  #whenListening(members: Member[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let left = members.length;
      // A generation shares one config; the first start's members have the primary's.
      const bound = workerStartBound(members[0]?.config ?? this.config);
      const timer = setTimeout(() => {
        const stuck = members
          .filter((m) => !m.listening)
          .map(
            (m) =>
              `worker ${m.worker.id}, pid ${m.worker.process.pid}: ${m.ready ? 'still starting its plugins and listeners' : 'still loading its config and plugins'}`,
          );
        fail(workersDidNotListen(bound, stuck));
      }, bound.ms);
      const cleanups: Array<() => void> = [];
      const done = () => {
        clearTimeout(timer);
        for (const c of cleanups) c();
      };
      const fail = (err: Error) => {
        done();
        reject(err);
      };
      for (const m of members) {
        if (m.listening) {
          left--;
          continue;
        }
        const onListening = () => {
          if (--left === 0) {
            done();
            resolve();
          }
        };
        const onFailed = (err: Error) => fail(err);
        const onExit = (code: number | null, signal: string | null) =>
          fail(new Error(`worker ${m.worker.id} exited while starting (code ${code}, signal ${signal})`));
        m.worker.once('switchyard:listening', onListening);
        m.worker.once('switchyard:failed', onFailed);
        m.worker.once('exit', onExit);
        cleanups.push(() => {
          m.worker.off('switchyard:listening', onListening);
          m.worker.off('switchyard:failed', onFailed);
          m.worker.off('exit', onExit);
        });
      }
      if (left === 0) {
        done();
        resolve();
      }
    });
  }

  #whenExited(members: Member[], timeout: number): Promise<void> {
    const alive = members.filter((m) => !m.worker.isDead());
    if (alive.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let left = alive.length;
      const timer = setTimeout(() => {
        for (const m of alive) if (!m.worker.isDead()) m.worker.process.kill('SIGKILL');
      }, timeout);
      for (const m of alive) {
        m.worker.once('exit', () => {
          if (--left === 0) {
            clearTimeout(timer);
            resolve();
          }
        });
      }
    });
  }
}

/** `{ [key]: env[key] }` when set, else nothing (cluster.fork merges it over process.env). */
function pick(env: Record<string, string | undefined>, key: string): Record<string, string> {
  const value = env[key];
  return value === undefined ? {} : { [key]: value };
}
