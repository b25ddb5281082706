import type { PortableConfig } from '../config/load-thread.js';
import type { ServiceCounters } from '../counters.js';
import type { BackendSpec, BackendState } from '../types.js';

/** One backend as the primary's registry holds it. */
export interface SnapshotBackend {
  spec: BackendSpec;
  weight: number;
  state: Exclude<BackendState, 'removed'>;
  /** `Backend.origin`: config, api, or the discovery source (which runs in the primary only). */
  origin: string;
  /** Statuses set by the primary's control-plane plugins (Runtime.primaryStatusSources). */
  status?: Record<string, string>;
}

/**
 * The primary's whole registry. Sent to a worker once it has applied its plugins, and to every
 * worker after each change; a worker ignores versions older than the one it holds.
 */
export interface RegistrySnapshot {
  version: number;
  services: Record<string, SnapshotBackend[]>;
}

/** One backend as one worker sees it. */
export interface BackendStats {
  active: number;
  total: number;
  connectFailures: number;
  /** Closed sessions' bytes (the core adds them at release). */
  bytesIn: number;
  bytesOut: number;
  /**
   * Open sessions' bytes so far, taken in the same synchronous walk as `bytesIn`: a session
   * is in exactly one of the two in any report, so `bytesIn + openBytesIn` never decreases.
   */
  openBytesIn: number;
  openBytesOut: number;
  /** `effectiveWeight / weight` here (modifiers such as slow-start); omitted when 1. */
  weightFactor?: number;
  status: Record<string, string>;
}

export interface ServiceStats {
  counters: ServiceCounters;
  sessions: number;
  backends: Record<string, BackendStats>;
}

/** What a worker reports every `STATS_INTERVAL` ms: its own numbers, never deltas. */
export interface WorkerStats {
  services: Record<string, ServiceStats>;
  /**
   * The process session budget (core/capacity.ts): sessions held and the limit (null: none);
   * `handed`: connections received from the primary so far (rr).
   */
  capacity: { active: number; limit: number | null; handed: number };
  /** The worker process itself: memory in bytes, CPU in seconds since it started. */
  process: { rss: number; heapUsed: number; cpuUser: number; cpuSystem: number };
}

export const STATS_INTERVAL = 500;

/** One backend as the other workers see it (PeerView: for one worker, everyone but itself). */
export interface PeerBackend {
  active: number;
  /** Merged statuses of the non-primary sources; omitted when none. */
  status?: Record<string, string>;
}

/** Per service, per backend address. */
export type PeerView = Record<string, Record<string, PeerBackend>>;

/**
 * A listening socket passed over IPC (scheduling: reuseport): Node's native TCP handle, sent as
 * such so the receiving side does not start accepting on it (a `net.Server` would). The
 * primary only holds and forwards it; a worker listens on it with `server.listen(handle)`.
 */
export interface ListenHandle {
  close(): void;
}

/** Primary → worker. */
export type ToWorker =
  /** The answer to `config?`: the config of the worker's generation, as loaded by the primary. */
  | { t: 'config'; config: PortableConfig }
  /** The other workers' sessions and statuses per backend, after every stats round. */
  | { t: 'peers'; services: PeerView }
  | { t: 'snapshot'; snapshot: RegistrySnapshot }
  | { t: 'request'; id: number; topic: string; payload: unknown }
  /** rr: a connection (the IPC handle: its native TCP handle) for listener `index` of `service`. */
  | { t: 'conn'; service: string; index: number }
  /** Stop accepting, drain (drain_timeout), exit 0. */
  | { t: 'stop' }
  /**
   * reuseport: comes with a listening socket (the IPC handle) to accept on, for listener
   * `index` of `service`: before start, instead of binding; after it, taken on beside its own.
   */
  | { t: 'socket'; service: string; index: number; slot: number }
  /**
   * reuseport, after any `socket`s: the port each listener binds (per service, in `listen`
   * order) where no socket was handed over. Starting workers wait for it.
   */
  | { t: 'listen'; services: Record<string, number[]> }
  /** reuseport: stop accepting on these handed-over sockets (their own worker is back). */
  | { t: 'release'; service: string; slots: number[] };

/** Worker → primary. */
export type ToPrimary =
  /** First thing a worker asks: its generation's config (it loads no config file itself). */
  | { t: 'config?' }
  /** Plugins applied, handlers registered: send the snapshot and the sticky requests. */
  | { t: 'hello' }
  /** Every listener is bound (rr: ready for connections); its session budget (null: none). */
  | { t: 'listening'; addresses: Record<string, string[]>; sessionLimit: number | null }
  /** reuseport: a socket this worker bound (the IPC handle): the primary keeps a copy. */
  | { t: 'socket'; service: string; index: number; port: number }
  | { t: 'stats'; stats: WorkerStats }
  | { t: 'reply'; id: number; value: unknown }
  /** Could not start (bad plugin apply, cannot bind); the worker exits 1 after this. */
  | { t: 'failed'; message: string; code?: string };

/** Cheap structural check of what arrives over IPC (anything else is ignored). */
export function isMessage<T extends { t: string }>(value: unknown): value is T {
  return typeof value === 'object' && value !== null && typeof (value as { t?: unknown }).t === 'string';
}
