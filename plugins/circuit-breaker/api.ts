/** What `service.use('circuit-breaker')` returns: read by the admin API and metrics. */
export interface CircuitBreakerApi {
  /** One entry per registered backend, in registry order. */
  list(): BreakerSnapshot[];
  /** The breaker of one backend (`host:port`), or undefined when the backend is unknown. */
  get(address: string): BreakerSnapshot | undefined;
  /** Closes a breaker by hand (operator override); false when unknown or already closed. */
  close(address: string): boolean;
  /** Totals since start, over every backend of the service. */
  readonly counters: Readonly<BreakerCounters>;
}

export type BreakerState = 'closed' | 'open' | 'half-open';

/** Why a breaker opened. */
export type TripReason = 'consecutive-failures' | 'failure-ratio' | 'half-open-failure' | 'peer-opened';

/** Why a breaker closed. */
export type CloseCause = 'trial-succeeded' | 'health-check' | 'manual';

export interface BreakerSnapshot {
  backend: string;
  state: BreakerState;
  /** Failures in a row while closed. */
  consecutiveFailures: number;
  /** The current open-time multiplier (Envoy's ejection count; decays while closed). */
  ejections: number;
  /** Times this breaker opened since the backend was added. */
  trips: number;
  /** Trial sessions in flight while half-open. */
  trials: number;
  /** Epoch ms of the last opening, 0 when it never opened. */
  openedAt: number;
  /** Epoch ms at which the open period ends (half-open then); 0 unless open. */
  openUntil: number;
  /** Length of the current or last open period, ms. */
  openMs: number;
  lastReason: TripReason | null;
  /** Error code of the last failure, e.g. `ECONNREFUSED`, `ETIMEDOUT`, `ECONNRESET`. */
  lastError: string | null;
  /** Contents of the failure-ratio window; null when that rule is off. */
  window: { successes: number; failures: number } | null;
}

export interface BreakerCounters {
  /** Connects that reached `established`. */
  successes: number;
  /** Failed connects plus sessions reset by the backend before its first byte. */
  failures: number;
  opened: number;
  halfOpened: number;
  closed: number;
  /** Trial sessions let through while half-open. */
  trials: number;
  /** Openings withheld because `max_ejection_percent` was reached. */
  capped: number;
}
