import type { Backend, Service, Session } from '../../plugin-sdk/index.js';
import type {
  BreakerCounters,
  BreakerSnapshot,
  BreakerState,
  CircuitBreakerApi,
  CloseCause,
  TripReason,
} from './api.js';
import type { CircuitBreakerOptions } from './options.js';
import { RollingWindow } from './rolling-window.js';

export const NAME = 'circuit-breaker';

/*
 * What `session.data['circuit-breaker']` holds. Nothing on the healthy path; a trial marker
 * while a half-open trial runs; or, for a session that reset a failure streak at `established`,
 * the streak it reset, so a reset before the first byte can restore it (a backend that accepts
 * and resets at once would otherwise never reach `consecutive_failures`).
 */
const TRIAL_PENDING = -1;
const TRIAL_DONE = -2;

/** One backend's breaker. */
class Breaker {
  state: BreakerState = 'closed';
  consecutive = 0;
  ejections = 0;
  trips = 0;
  trials = 0;
  openedAt = 0;
  openUntil = 0;
  openMs = 0;
  /** Start of the current closed period: the ejection multiplier decays from here. */
  closedAt: number;
  timer: NodeJS.Timeout | null = null;
  lastReason: TripReason | null = null;
  lastError: string | null = null;
  /** An opening was withheld by the ejection cap (logged once per streak). */
  capped = false;
  readonly window: RollingWindow | null;

  constructor(
    readonly backend: Backend,
    now: number,
    windowMs: number | null,
  ) {
    this.closedAt = now;
    this.window = windowMs === null ? null : new RollingWindow(windowMs, now);
  }
}

/**
 * The breakers of one service and their transitions. Hook taps call in here; the healthy path
 * (everything closed) is a Map lookup per session and nothing else.
 */
export class BreakerController {
  readonly #breakers = new Map<Backend, Breaker>();
  /** Breakers open or half-open: 0 means `filter` returns its input untouched. */
  #notClosed = 0;
  #halfOpen = 0;
  readonly #counters: BreakerCounters = {
    successes: 0,
    failures: 0,
    opened: 0,
    halfOpened: 0,
    closed: 0,
    trials: 0,
    capped: 0,
  };

  constructor(
    private readonly service: Service,
    private readonly o: CircuitBreakerOptions,
  ) {}

  add(backend: Backend): void {
    this.remove(backend);
    const now = Date.now();
    this.#breakers.set(backend, new Breaker(backend, now, this.o.failure_ratio > 0 ? this.o.window : null));
    this.service.setBackendStatus(backend, NAME, 'closed');
  }

  /** A removed backend forgets its breaker (Envoy forgets ejections of removed hosts too). */
  remove(backend: Backend): void {
    const br = this.#breakers.get(backend);
    if (!br) return;
    if (br.timer !== null) clearTimeout(br.timer);
    if (br.state !== 'closed') this.#notClosed--;
    if (br.state === 'half-open') this.#halfOpen--;
    this.#breakers.delete(backend);
  }

  /** `candidates` waterfall: drop open backends and half-open ones whose trial slots are taken. */
  filter(backends: Backend[]): Backend[] {
    if (this.#notClosed === 0) return backends;
    let out: Backend[] | null = null;
    for (let i = 0; i < backends.length; i++) {
      const b = backends[i]!;
      const br = this.#breakers.get(b);
      const blocked =
        br !== undefined &&
        (br.state === 'open' || (br.state === 'half-open' && br.trials >= this.o.half_open_max));
      if (blocked) {
        if (out === null) out = backends.slice(0, i);
      } else if (out !== null) {
        out.push(b);
      }
    }
    return out ?? backends;
  }

  /** `connect`: a session dialling a half-open backend is one of its trials. */
  onConnect(session: Session, backend: Backend): void {
    if (this.#halfOpen === 0) return;
    const br = this.#breakers.get(backend);
    if (br === undefined || br.state !== 'half-open') return;
    br.trials++;
    this.#counters.trials++;
    session.data[NAME] = TRIAL_PENDING;
  }

  onEstablished(session: Session): void {
    const br = this.#breakers.get(session.backend!);
    if (br === undefined) return;
    this.#counters.successes++;
    if (session.data[NAME] === TRIAL_PENDING) {
      session.data[NAME] = TRIAL_DONE;
      if (br.state === 'half-open') {
        br.trials--;
        this.#close(br, session.connectedAt, 'trial-succeeded');
      }
      return;
    }
    // Outcomes of sessions dialled before the breaker opened say nothing about now.
    if (br.state !== 'closed') return;
    br.window?.success(session.connectedAt);
    if (br.consecutive > 0) {
      session.data[NAME] = br.consecutive;
      br.consecutive = 0;
    }
  }

  onConnectFailed(session: Session, backend: Backend, error: Error): void {
    const br = this.#breakers.get(backend);
    if (br === undefined) return;
    br.lastError = (error as NodeJS.ErrnoException).code ?? error.message;
    const trial = session.data[NAME] === TRIAL_PENDING;
    if (trial) {
      session.data[NAME] = undefined;
      if (br.state === 'half-open' && br.trials > 0) br.trials--;
    }
    this.#failure(br, Date.now(), trial);
  }

  /**
   * `closed`: a session the backend reset before sending a byte was a failure after all; a
   * trial abandoned by its client while dialling frees its slot.
   */
  onClosed(session: Session): void {
    const mark = session.data[NAME];
    const reset =
      session.closeReason === 'backend-reset' && session.connectedAt > 0 && session.bytesOut === 0;
    if (mark === undefined && !reset) return;
    const br = session.backend === null ? undefined : this.#breakers.get(session.backend);
    if (br === undefined) return;
    if (mark === TRIAL_PENDING) {
      if (br.state === 'half-open' && br.trials > 0) br.trials--;
      return;
    }
    if (!reset) return;
    br.lastError = session.closeDetail ?? 'ECONNRESET';
    const now = session.endedAt;
    if (mark === TRIAL_DONE) {
      // The trial that closed the breaker turned out to be a reset: back to open, longer.
      this.#counters.failures++;
      if (br.state === 'closed') this.#tryOpen(br, now, 'half-open-failure');
      return;
    }
    if (br.state === 'closed') {
      br.window?.retractSuccess(now);
      if (typeof mark === 'number' && mark > br.consecutive) br.consecutive = mark;
    }
    this.#failure(br, now, false);
  }

  /** A passing active health check closes an open or half-open breaker early. */
  onBackendStatus(backend: Backend, source: string, status: string): void {
    if (source !== 'health-check' || status !== 'up') return;
    const br = this.#breakers.get(backend);
    if (br !== undefined && br.state !== 'closed') this.#close(br, Date.now(), 'health-check');
  }

  /**
   * Cluster: another worker's breaker for this backend opened. Ejection is cluster-wide, as
   * Envoy's outlier detection is across its worker threads: open here too (within
   * max_ejection_percent), then probe with our own half-open trials. Only the change to `open`
   * counts, so workers never re-open each other in a loop after they close.
   */
  onPeerStatus(backend: Backend, source: string, status: string): void {
    if (source !== NAME || status !== 'open') return;
    const br = this.#breakers.get(backend);
    if (br === undefined || br.state !== 'closed') return;
    br.lastError = 'opened in another worker';
    this.#tryOpen(br, Date.now(), 'peer-opened');
  }

  stop(): void {
    for (const br of this.#breakers.values()) {
      if (br.timer !== null) clearTimeout(br.timer);
      br.timer = null;
    }
  }

  api(): CircuitBreakerApi {
    return {
      list: () => this.service.backends.list().flatMap((b) => this.#snapshot(b) ?? []),
      get: (address) => {
        const backend = this.service.backends.get(address);
        return backend === undefined ? undefined : this.#snapshot(backend);
      },
      close: (address) => {
        const backend = this.service.backends.get(address);
        const br = backend === undefined ? undefined : this.#breakers.get(backend);
        if (br === undefined || br.state === 'closed') return false;
        this.#close(br, Date.now(), 'manual');
        return true;
      },
      counters: this.#counters,
    };
  }

  #failure(br: Breaker, now: number, trial: boolean): void {
    this.#counters.failures++;
    if (br.state === 'half-open') {
      // Only trials decide a half-open breaker; late outcomes of older sessions do not.
      if (trial) this.#open(br, now, 'half-open-failure');
      return;
    }
    if (br.state === 'open') return;
    br.consecutive++;
    br.window?.failure(now);
    const n = this.o.consecutive_failures;
    if (n > 0 && br.consecutive >= n) this.#tryOpen(br, now, 'consecutive-failures');
    else if (br.window !== null && br.window.failureRatio(now, this.o.min_requests) >= this.o.failure_ratio)
      this.#tryOpen(br, now, 'failure-ratio');
  }

  /** Opens a closed breaker unless that would eject more of the pool than allowed. */
  #tryOpen(br: Breaker, now: number, reason: TripReason): void {
    const allowed = this.#allowedEjections();
    let ejected = 0;
    for (const other of this.#breakers.values())
      if (other.state !== 'closed' && other.backend.state === 'up') ejected++;
    if (ejected >= allowed) {
      this.#counters.capped++;
      if (!br.capped) {
        br.capped = true;
        this.service.log.warn(
          { backend: br.backend.address, reason, ejected, maxEjectionPercent: this.o.max_ejection_percent },
          'circuit breaker kept closed: max_ejection_percent reached',
        );
      }
      return;
    }
    this.#open(br, now, reason);
  }

  /** Envoy's rule: a share of the backends that are up, but always at least one unless 0%. */
  #allowedEjections(): number {
    const pct = this.o.max_ejection_percent;
    if (pct >= 100) return Number.POSITIVE_INFINITY;
    if (pct <= 0) return 0;
    return Math.max(1, Math.floor((this.service.backends.up.length * pct) / 100));
  }

  #open(br: Breaker, now: number, reason: TripReason): void {
    if (br.state === 'closed') {
      this.#notClosed++;
      br.ejections = Math.max(0, br.ejections - Math.floor((now - br.closedAt) / this.o.decay_interval));
    } else if (br.state === 'half-open') {
      this.#halfOpen--;
    }
    br.ejections++;
    br.trips++;
    const base = Math.min(this.o.base_ejection_time * br.ejections, this.o.max_ejection_time);
    const ms = base + Math.floor((Math.random() * base * this.o.jitter) / 100);
    br.state = 'open';
    br.trials = 0;
    br.consecutive = 0;
    br.capped = false;
    br.lastReason = reason;
    br.openedAt = now;
    br.openMs = ms;
    br.openUntil = now + ms;
    br.window?.reset(now);
    if (br.timer !== null) clearTimeout(br.timer);
    br.timer = setTimeout(this.#halfOpenAfterTimeout, ms, br);
    br.timer.unref();
    this.#counters.opened++;
    this.service.setBackendStatus(br.backend, NAME, 'open');
    this.service.log.warn(
      { backend: br.backend.address, reason, lastError: br.lastError, ejections: br.ejections, openMs: ms },
      'circuit breaker opened',
    );
  }

  readonly #halfOpenAfterTimeout = (br: Breaker): void => {
    br.timer = null;
    if (br.state !== 'open' || this.#breakers.get(br.backend) !== br) return;
    br.state = 'half-open';
    br.trials = 0;
    br.openUntil = 0;
    this.#halfOpen++;
    this.#counters.halfOpened++;
    this.service.setBackendStatus(br.backend, NAME, 'half-open');
    this.service.log.info(
      { backend: br.backend.address, trials: this.o.half_open_max },
      'circuit breaker half-open',
    );
  };

  #close(br: Breaker, now: number, cause: CloseCause): void {
    if (br.state === 'closed') return;
    if (br.timer !== null) clearTimeout(br.timer);
    br.timer = null;
    if (br.state === 'half-open') this.#halfOpen--;
    this.#notClosed--;
    br.state = 'closed';
    br.closedAt = now;
    br.openUntil = 0;
    br.consecutive = 0;
    br.window?.reset(now);
    this.#counters.closed++;
    this.service.setBackendStatus(br.backend, NAME, 'closed');
    this.service.log.info(
      { backend: br.backend.address, cause, ejections: br.ejections },
      'circuit breaker closed',
    );
  }

  #snapshot(backend: Backend): BreakerSnapshot | undefined {
    const br = this.#breakers.get(backend);
    if (br === undefined) return undefined;
    return {
      backend: backend.address,
      state: br.state,
      consecutiveFailures: br.consecutive,
      ejections: br.ejections,
      trips: br.trips,
      trials: br.trials,
      openedAt: br.openedAt,
      openUntil: br.openUntil,
      openMs: br.openMs,
      lastReason: br.lastReason,
      lastError: br.lastError,
      window: br.window?.counts(Date.now()) ?? null,
    };
  }
}
