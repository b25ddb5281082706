import type { Socket } from 'node:net';
import type { Backend } from '../../plugin-sdk/index.js';

/**
 * The name the plugin provides its API under (`service.use<HealthCheckApi>(HEALTH_CHECK)`)
 * and the `source` of its `backendStatus` changes (`backend.status['health-check']`).
 */
export const HEALTH_CHECK = 'health-check';

/** What `backend.status['health-check']` holds. */
export type HealthStatus = 'up' | 'down';

/**
 * Where a backend stands between its thresholds (HAProxy's "UP, going down" and "DOWN, going up").
 * `going-down` is still healthy; `going-up` is still unhealthy.
 */
export type HealthPhase = 'up' | 'going-down' | 'down' | 'going-up';

/** A snapshot of one backend's health, for the admin API and metrics. */
export interface BackendHealth {
  address: string;
  /** Takes new sessions as far as health checks go. */
  healthy: boolean;
  phase: HealthPhase;
  consecutiveSuccesses: number;
  consecutiveFailures: number;
  /** Checks completed since the backend was added. */
  checks: number;
  failedChecks: number;
  /** `Date.now()` when the last completed check started; null before the first one. */
  lastCheckAt: number | null;
  /** How long the last completed check took (ms). */
  lastDurationMs: number | null;
  /** Why the last check failed; null when it passed or none ran yet. */
  lastError: string | null;
  /** `Date.now()` of the last up/down change (or when checking began). */
  lastChangeAt: number;
}

/** Totals of one service since start. */
export interface HealthCheckCounters {
  checks: number;
  failedChecks: number;
  markedDown: number;
  markedUp: number;
  /** Sessions closed because their backend was marked down (`on_marked_down: close`). */
  sessionsClosed: number;
  /** Connect attempts refused because every backend was down (`when_all_down: refuse`). */
  refusedAllDown: number;
  /** Connect attempts routed to all backends because every backend was down (`when_all_down: panic`). */
  panicRouted: number;
}

/**
 * Bytes a check writes first on its connection to `backend`, right after the TCP connect and
 * before a TLS handshake or the `send` payload; null for none. `socket` is the connected TCP
 * socket (its local and remote address). proxy-protocol registers one so backends that expect
 * a PROXY header get a LOCAL one on checks.
 */
export type ProbePrefix = (backend: Backend, socket: Socket) => Buffer | null;

/** What `service.use<HealthCheckApi>('health-check')` returns. */
export interface HealthCheckApi {
  /**
   * Registers (or, with null, removes) the probe prefix of `owner` (a plugin name). Call it in
   * `apply` or a `start` hook; it applies to every check started afterwards. With several
   * owners their bytes are written in registration order. A prefix that throws fails that
   * check (the error is its reason).
   */
  setProbePrefix(owner: string, prefix: ProbePrefix | null): void;
  /** False only while the backend is marked down; unknown backends count as healthy. */
  isHealthy(backend: Backend): boolean;
  /** Health of one backend, by object or address (`host:port`). */
  get(backend: Backend | string): BackendHealth | undefined;
  /** Health of every checked backend, in the order they were added. */
  list(): BackendHealth[];
  /** True while every backend in state `up` is marked down. */
  readonly allDown: boolean;
  readonly counters: Readonly<HealthCheckCounters>;
}
