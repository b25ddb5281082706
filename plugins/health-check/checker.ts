import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Backend, Service, Session } from '../../plugin-sdk/index.js';
import {
  type BackendHealth,
  HEALTH_CHECK,
  type HealthCheckApi,
  type HealthCheckCounters,
  type HealthStatus,
  type ProbePrefix,
} from './api.js';
import { HealthState } from './health-state.js';
import type { CheckSettings } from './options.js';
import { type ProbePlan, probe } from './probe.js';
import { firstDelay, intervalFor, jittered } from './schedule.js';
import { type ProbeTarget, probeTarget } from './target.js';

/** One checked backend: its counters, its timer and its check in flight. */
interface Entry {
  readonly backend: Backend;
  readonly state: HealthState;
  readonly target: ProbeTarget;
  timer: NodeJS.Timeout | null;
  abort: (() => void) | null;
  checks: number;
  failedChecks: number;
  lastCheckAt: number | null;
  lastDurationMs: number | null;
  lastError: string | null;
  lastChangeAt: number;
}

/** The refusal answer; frozen because downstream taps must never mutate what they receive. */
const NONE = Object.freeze([]) as unknown as Backend[];

/**
 * Active health checks for one service: a timer per backend, rise/fall state, the candidate
 * filter and the API other plugins read. Nothing here runs per connection except `filter`.
 */
export class HealthChecker implements HealthCheckApi {
  readonly counters: HealthCheckCounters = {
    checks: 0,
    failedChecks: 0,
    markedDown: 0,
    markedUp: 0,
    sessionsClosed: 0,
    refusedAllDown: 0,
    panicRouted: 0,
  };
  readonly #entries = new Map<Backend, Entry>();
  /** Backends marked down; the candidate filter only looks here. */
  readonly #down = new Set<Backend>();
  #allDown = false;
  #running = false;
  /**
   * Last filter input and output. The core passes the registry's `up` array, which is replaced
   * (never mutated) on change, so while a backend is down the copy is made once, not per session.
   */
  #cacheIn: Backend[] | null = null;
  #cacheOut: Backend[] = NONE;
  #plan: ProbePlan;

  /**
   * `probe`: runs the checks (one process, or a cluster primary). `follow`: a cluster worker;
   * it runs no check and takes each backend's health from the `backendStatus` the primary's
   * snapshots set (`follow`), keeping the candidate filter, `when_all_down` and
   * `on_marked_down` here, where the sessions are.
   */
  constructor(
    private readonly service: Service,
    private settings: CheckSettings,
    private readonly log: Logger,
    private readonly baseDir: string,
    private readonly mode: 'probe' | 'follow' = 'probe',
  ) {
    this.#plan = planOf(settings);
  }

  get allDown(): boolean {
    return this.#allDown;
  }

  /**
   * The `candidates` tap. Returns the array it got while no backend is down (the common case
   * allocates nothing), a filtered copy otherwise, and applies `when_all_down`.
   */
  readonly filter = (backends: Backend[], session: Session): Backend[] => {
    const down = this.#down;
    if (down.size === 0) return backends;
    if (this.#allDown) {
      if (this.settings.whenAllDown === 'panic') {
        this.counters.panicRouted++;
        return backends;
      }
      this.counters.refusedAllDown++;
      return NONE;
    }
    if (backends === this.#cacheIn) return this.#cacheOut;
    let healthy = 0;
    for (let i = 0; i < backends.length; i++) if (!down.has(backends[i]!)) healthy++;
    let out: Backend[];
    if (healthy === backends.length) out = backends;
    else if (healthy === 0 && session.tried !== null) {
      // A retry whose untried backends are all down: like the core, allow healthy ones again.
      return this.service.backends.up.filter((b) => !down.has(b));
    } else {
      out = [];
      for (let i = 0; i < backends.length; i++) if (!down.has(backends[i]!)) out.push(backends[i]!);
    }
    this.#cacheIn = backends;
    this.#cacheOut = out;
    return out;
  };

  isHealthy(backend: Backend): boolean {
    return !this.#down.has(backend);
  }

  get(backend: Backend | string): BackendHealth | undefined {
    const b = typeof backend === 'string' ? this.service.backends.get(backend) : backend;
    const entry = b === undefined ? undefined : this.#entries.get(b);
    return entry === undefined ? undefined : snapshot(entry);
  }

  list(): BackendHealth[] {
    return [...this.#entries.values()].map(snapshot);
  }

  /** `start` hook: checks every backend known so far; later ones start when added. */
  start(): void {
    this.#running = true;
    if (this.mode === 'probe') for (const entry of this.#entries.values()) this.#scheduleFirst(entry);
  }

  /**
   * New options from a reload (cluster primary): thresholds, timing and the probe change in
   * place; each backend keeps its current health and is checked again within `interval`.
   */
  reconfigure(settings: CheckSettings): void {
    this.settings = settings;
    this.#plan = planOf(settings);
    for (const [backend, old] of this.#entries) {
      this.#halt(old);
      const state = new HealthState(
        old.state.healthy ? 'fully-up' : 'fully-down',
        settings.rise,
        settings.fall,
      );
      const entry: Entry = { ...old, state, target: probeTarget(backend, settings, this.baseDir) };
      this.#entries.set(backend, entry);
      if (this.#running && this.mode === 'probe') this.#scheduleFirst(entry);
    }
    this.log.info({ backends: this.#entries.size }, 'health-check options reloaded');
  }

  /**
   * Follow mode's `backendStatus` tap: the primary marked a backend up or down. Our own
   * `setBackendStatus` calls come back here too and change nothing.
   */
  readonly follow = (backend: Backend, source: string, status: string): void => {
    if (this.mode !== 'follow' || source !== HEALTH_CHECK) return;
    const entry = this.#entries.get(backend);
    const healthy = status !== 'down';
    if (entry === undefined || entry.state.healthy === healthy) return;
    entry.state.healthy = healthy;
    this.#transition(entry);
  };

  /** `stop` hook: no timer or socket survives it. */
  stop(): void {
    this.#running = false;
    for (const entry of this.#entries.values()) this.#halt(entry);
  }

  /** `backendAdded` tap. */
  add(backend: Backend): void {
    const old = this.#entries.get(backend);
    if (old !== undefined) this.#halt(old); // re-added while its old sessions were running
    const entry: Entry = {
      backend,
      state: new HealthState(this.settings.initial, this.settings.rise, this.settings.fall),
      target: probeTarget(backend, this.settings, this.baseDir),
      timer: null,
      abort: null,
      checks: 0,
      failedChecks: 0,
      lastCheckAt: null,
      lastDurationMs: null,
      lastError: null,
      lastChangeAt: Date.now(),
    };
    this.#entries.set(backend, entry);
    if (entry.state.healthy) this.#down.delete(backend);
    else this.#down.add(backend);
    this.#cacheIn = null;
    this.service.setBackendStatus(backend, HEALTH_CHECK, status(entry.state.healthy));
    this.refreshAllDown();
    if (this.#running && this.mode === 'probe') this.#scheduleFirst(entry);
  }

  /** `backendRemoved` tap. */
  remove(backend: Backend): void {
    const entry = this.#entries.get(backend);
    if (entry === undefined) return;
    this.#halt(entry);
    this.#entries.delete(backend);
    this.#down.delete(backend);
    this.#cacheIn = null;
    this.refreshAllDown();
  }

  /** Recomputes "every `up` backend is down" (registry or health changed); logs each change. */
  refreshAllDown(): void {
    const up = this.service.backends.up;
    let allDown = up.length > 0;
    for (const b of up) {
      if (!this.#down.has(b)) {
        allDown = false;
        break;
      }
    }
    if (allDown === this.#allDown) return;
    this.#allDown = allDown;
    if (this.mode === 'follow') this.log.debug({ allDown }, 'every backend down changed');
    else if (!allDown) this.log.info('a backend is healthy again: new sessions flow');
    else if (this.settings.whenAllDown === 'panic')
      this.log.warn({ backends: up.length }, 'every backend is down: panic routing to all of them');
    else this.log.warn({ backends: up.length }, 'every backend is down: refusing new sessions');
  }

  #scheduleFirst(entry: Entry): void {
    this.#schedule(entry, firstDelay(this.settings.interval, this.settings.jitter));
  }

  #schedule(entry: Entry, delay: number): void {
    if (entry.timer !== null) clearTimeout(entry.timer);
    entry.timer = setTimeout(this.#check, delay, entry);
    entry.timer.unref();
  }

  #halt(entry: Entry): void {
    if (entry.timer !== null) clearTimeout(entry.timer);
    entry.timer = null;
    entry.abort?.();
    entry.abort = null;
  }

  /** The timer callback (one bound function for every backend, the entry passed as argument). */
  readonly #check = (entry: Entry): void => {
    entry.timer = null;
    if (!this.#running || this.#entries.get(entry.backend) !== entry) return;
    const startedAt = Date.now();
    const t0 = performance.now();
    const start = this.#prefixes.size === 0 ? null : (socket: Socket) => this.#prefix(entry.backend, socket);
    entry.abort = probe(
      entry.target,
      this.#plan,
      (error) => {
        entry.abort = null;
        this.#completed(entry, error, startedAt, performance.now() - t0);
      },
      start,
    );
  };

  /** Probe prefixes by owner (`setProbePrefix`), in registration order. */
  readonly #prefixes = new Map<string, ProbePrefix>();

  setProbePrefix(owner: string, prefix: ProbePrefix | null): void {
    if (prefix === null) this.#prefixes.delete(owner);
    else this.#prefixes.set(owner, prefix);
  }

  #prefix(backend: Backend, socket: Socket): Buffer | null {
    const parts: Buffer[] = [];
    for (const prefix of this.#prefixes.values()) {
      const bytes = prefix(backend, socket);
      if (bytes !== null) parts.push(bytes);
    }
    return parts.length === 0 ? null : parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  #completed(entry: Entry, error: string | null, startedAt: number, duration: number): void {
    entry.checks++;
    this.counters.checks++;
    entry.lastCheckAt = startedAt;
    entry.lastDurationMs = Math.round(duration * 10) / 10;
    entry.lastError = error;
    if (error !== null) {
      entry.failedChecks++;
      this.counters.failedChecks++;
    }
    const flipped = entry.state.record(error === null);
    if (flipped) {
      try {
        this.#transition(entry);
      } catch (err) {
        // A throwing backendStatus tap of another plugin must not stop the checks (or the process).
        this.log.error({ err, backend: entry.backend.address }, 'a health transition handler threw');
      }
    } else if (error !== null && this.log.isLevelEnabled('debug'))
      this.log.debug(
        { backend: entry.backend.address, err: error, phase: entry.state.phase },
        'check failed',
      );
    if (this.#running && this.#entries.get(entry.backend) === entry) {
      const base = intervalFor(entry.state.phase, this.settings);
      this.#schedule(entry, jittered(base, this.settings.jitter));
    }
  }

  #transition(entry: Entry): void {
    const { backend, state } = entry;
    entry.lastChangeAt = Date.now();
    if (state.healthy) {
      this.#down.delete(backend);
      this.counters.markedUp++;
    } else {
      this.#down.add(backend);
      this.counters.markedDown++;
    }
    this.#cacheIn = null;
    const healthy = this.service.backends.up.filter((b) => !this.#down.has(b)).length;
    const fields = {
      backend: backend.address,
      checks: state.healthy ? state.successes : state.failures,
      durationMs: entry.lastDurationMs,
      healthy,
    };
    // In a cluster the primary logs each change once; workers only follow it.
    if (this.mode === 'follow') this.log.debug(fields, state.healthy ? 'backend is UP' : 'backend is DOWN');
    else if (state.healthy) this.log.info(fields, 'backend is UP (health check passed)');
    else this.log.warn({ ...fields, reason: entry.lastError }, 'backend is DOWN (health check failed)');
    this.refreshAllDown();
    if (!state.healthy && this.settings.onMarkedDown === 'close') {
      const closed = this.service.closeSessions(
        'killed',
        (s) => s.backend === backend && s.upstream !== null,
        HEALTH_CHECK,
      );
      this.counters.sessionsClosed += closed;
      if (closed > 0)
        this.log.warn({ backend: backend.address, closed }, 'closed sessions of a down backend');
    }
    // Last, so our own state is consistent whatever other plugins' backendStatus taps do.
    this.service.setBackendStatus(backend, HEALTH_CHECK, status(state.healthy));
  }
}

function planOf(settings: CheckSettings): ProbePlan {
  return { send: settings.send, expect: settings.expect, timeout: settings.timeout };
}

function status(healthy: boolean): HealthStatus {
  return healthy ? 'up' : 'down';
}

function snapshot(e: Entry): BackendHealth {
  return {
    address: e.backend.address,
    healthy: e.state.healthy,
    phase: e.state.phase,
    consecutiveSuccesses: e.state.successes,
    consecutiveFailures: e.state.failures,
    checks: e.checks,
    failedChecks: e.failedChecks,
    lastCheckAt: e.lastCheckAt,
    lastDurationMs: e.lastDurationMs,
    lastError: e.lastError,
    lastChangeAt: e.lastChangeAt,
  };
}
