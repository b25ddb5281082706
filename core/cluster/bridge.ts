/**
 * Where this process stands when `workers` > 1. `single`: the default one-process mode.
 * `primary`: the control plane (registry, admin API, metrics; never binds service listeners).
 * `worker`: the data plane (binds the shared listeners, runs every service-scope plugin).
 */
export type RuntimeRole = 'single' | 'primary' | 'worker';

/** The name the bridge is provided under: `runtime.use<ClusterBridge>(CLUSTER)`. */
export const CLUSTER = 'cluster';

/**
 * How process-scope plugins reach the other processes of a cluster, provided on the runtime
 * (in the primary and in workers) before plugins are applied; absent with one process.
 * Plugins that change process-wide state (force-disconnect) change it in the primary with
 * `request`, and answer it in workers with `handle`.
 */
export interface ClusterBridge {
  readonly role: 'primary' | 'worker';
  /**
   * Primary: sends `payload` on `topic` to every live worker and resolves with their answers
   * (workers that exit or do not answer within `timeout` ms, default 5000, are left out).
   * Unless `sticky` is false, the last payload of each topic is kept and sent to workers forked
   * later (a replaced worker, a reload), so the state it carries survives them. Worker:
   * resolves with [] (only the primary asks).
   */
  request<T = unknown>(
    topic: string,
    payload: unknown,
    options?: { sticky?: boolean; timeout?: number },
  ): Promise<T[]>;
  /** Worker: answers requests on `topic` (one handler per topic). Primary: ignored. */
  handle(topic: string, handler: (payload: unknown) => unknown): void;
  /** Live workers (primary); 0 in a worker. */
  workerCount(): number;
  /** Primary: every live worker as of its last report (≤ 500 ms old); [] in a worker. */
  workers(): WorkerInfo[];
}

/** One worker process as the primary sees it (metrics, admin). */
export interface WorkerInfo {
  /** `cluster.worker.id`: a replacement gets a new one. */
  id: number;
  pid: number;
  generation: number;
  /** Told to stop (reload, shutdown): draining its sessions. */
  retiring: boolean;
  /** Sessions held, and the session budget (null: none). */
  sessions: number;
  sessionLimit: number | null;
  rss: number;
  heapUsed: number;
  cpuUser: number;
  cpuSystem: number;
}

/** Core topic: the primary's drain of a backend timed out; workers close its sessions. */
export const CLOSE_BACKEND = 'core:close-backend';
