import type { Overflow } from './options.js';

/** What `service.use('backend-limits')` returns: read by the admin API and metrics. */
export interface BackendLimitsApi {
  readonly overflow: Overflow;
  /** Sessions waiting for a slot now. */
  queueLength(): number;
  /** One entry per registered backend, in registry order. */
  backends(): BackendLimitSnapshot[];
  /** Totals since start. */
  readonly counters: Readonly<LimitCounters>;
}

export interface BackendLimitSnapshot {
  backend: string;
  /** Sessions on the backend (connecting or established), as kept by the core. */
  active: number;
  /** Connects in progress. */
  pending: number;
  /** 0 = no limit. */
  maxConnections: number;
  /** 0 = no limit. */
  maxPending: number;
  /** No room for another session now. */
  full: boolean;
  /** Times a session was steered away from (or refused by) this backend because it was full. */
  overflows: number;
}

export interface LimitCounters {
  /** Sessions that entered the queue. */
  queued: number;
  /** Sessions that left the queue to dial a backend. */
  dequeued: number;
  /** Sessions refused after `queue_timeout` in the queue. */
  timeouts: number;
  /** Sessions refused because the queue was full. */
  queueFull: number;
  /** Sessions refused with `max-connections` (overflow next or refuse). */
  refused: number;
  /** Queued sessions closed while waiting (shutdown, kill). */
  abandoned: number;
  /** Longest the queue has been. */
  maxQueueLength: number;
}
